"""Backbones for VLA-Adapter: one interface over our from-scratch transformer and Hugging Face causal LMs.

`backbone(embeds, key_mask, causal)` -> a list with every layer's hidden states (b, n, d), layer 1..L.
"""

from __future__ import annotations

import torch
from torch import nn

from tinyvla.modules.transformer import Block, init_weights


class ScratchBackbone(nn.Module):
    """A small pre-norm transformer over token embeddings, with learned positions."""

    def __init__(self, *, vocab_size: int, width: int, layers: int, heads: int, mlp_ratio: float, max_len: int):
        super().__init__()
        self.width, self.num_layers = width, layers
        self.embed_tokens = nn.Embedding(vocab_size, width)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_len, width))
        self.blocks = nn.ModuleList(Block(dim=width, heads=heads, mlp_ratio=mlp_ratio) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        init_weights(self)
        # Unit-scale token embeddings: with 0.02-scale ones (GPT-2 style) the first blocks' outputs,
        # nearly the same for every token at init, swamp each token's own content, and the Raw features
        # of image positions lose what is where (measured: stuck at the instruction-only error).
        nn.init.normal_(self.embed_tokens.weight, std=1.0)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embed_tokens(ids)

    def forward(self, embeds: torch.Tensor, key_mask: torch.Tensor, causal: bool) -> list[torch.Tensor]:
        n = embeds.shape[1]
        if n > self.pos_embed.shape[1]:
            raise ValueError(f"sequence of {n} tokens exceeds the backbone's {self.pos_embed.shape[1]} positions")
        x = embeds + self.pos_embed[:, :n]
        mask = key_mask[:, None, None, :]  # (b, 1, 1, n)
        if causal:
            mask = mask & torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
        hidden = []
        for i, block in enumerate(self.blocks):
            x = block(x, mask)
            hidden.append(self.norm(x) if i == len(self.blocks) - 1 else x)  # like HF: the last one is normed
        return hidden


class HFBackbone(nn.Module):
    """A Hugging Face decoder's base model (e.g. `Qwen2Model`) or a BERT-style encoder, read through
    `inputs_embeds`."""

    def __init__(self, model: nn.Module):
        super().__init__()
        from tinyvla.modules.pretrained import is_encoder

        self.model = model
        self.width = model.config.hidden_size
        self.num_layers = model.config.num_hidden_layers
        self.encoder = is_encoder(model)  # BERT-style: bidirectional, reads a 2D padding mask

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(ids)

    def forward(self, embeds: torch.Tensor, key_mask: torch.Tensor, causal: bool) -> list[torch.Tensor]:
        n = embeds.shape[1]
        if self.encoder:  # position (and token-type) embeddings are added by the model itself
            out = self.model(inputs_embeds=embeds, attention_mask=key_mask.long(), output_hidden_states=True)
            return list(out.hidden_states[1:])
        allowed = key_mask[:, None, None, :].expand(-1, 1, n, n)  # (b, 1, n, n)
        if causal:
            allowed = allowed & torch.ones(n, n, dtype=torch.bool, device=embeds.device).tril()
        # A 4D mask is used as given (transformers' masking utilities skip their causal mask); additive
        # form so that eager and SDPA attention read it the same way. Rows keep their own key, so no
        # query ever sees only -inf.
        allowed = allowed | torch.eye(n, dtype=torch.bool, device=embeds.device)
        dtype = embeds.dtype if embeds.dtype.is_floating_point else torch.float32
        mask = torch.zeros(allowed.shape, dtype=dtype, device=embeds.device).masked_fill(~allowed, torch.finfo(dtype).min)
        out = self.model(inputs_embeds=embeds, attention_mask=mask, output_hidden_states=True, use_cache=False)
        return list(out.hidden_states[1:])
