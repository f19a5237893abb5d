"""Batch keys shared by datasets, policies, envs and the server (LeRobot-style names).

Shape legend used in tensor comments across the package:
    b batch, n tokens, d width, h heads, t chunk steps, a action dim, s state dim,
    c channels, H/W image height/width, l text tokens.
"""

OBS_IMAGE = "observation.image"  # float32 (b, 3, H, W) in [0, 1], or uint8 (b, 3, H, W)
OBS_IMAGE_FEATURES = "observation.image_features"  # a frozen vision tower's pre-computed output (b, p, d)
OBS_STATE = "observation.state"  # float32 (b, s)
TASK = "task"  # list[str] of natural-language instructions (LeRobot calls it "task")
TOKENS = "observation.language.tokens"  # int64 (b, l)
TOKEN_MASK = "observation.language.attention_mask"  # bool (b, l), True = real token
ACTION = "action"  # float32 (b, a) or (b, t, a)

CHECKPOINT_FORMAT_VERSION = 1
DATASET_FORMAT_VERSION = 1

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TOKENIZER_NAME = "tokenizer.json"
STATS_NAME = "stats.json"
TRAIN_STATE_NAME = "train_state.json"
