"""The VLA-Adapter policy: one Bridge Attention block per backbone layer.

Shapes: b batch, t chunk (action latent tokens), q ActionQuery tokens (+1 proprio), r Raw tokens,
d width, h heads, a action dim.

In block l the action latent x (b, t, d) attends to three sources: itself, [C_AQ(l); proprio] and
C_R(l). With `softmax="separate"` each source has its own softmax and the outputs are summed, the
gated ones scaled by tanh(g) (g a learnable scalar per block, initialised to 0): a gate at 0 removes
its source entirely. With `softmax="joint"` (the reference code) there is one softmax over all keys and
the Raw *logits* are multiplied by tanh(g); then a gate at 0 leaves the Raw keys a uniform share of
the attention, which is why the block also reports the attention mass each source receives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SOURCES = ("self", "aq", "raw")


class BridgeAttention(nn.Module):
    def __init__(self, *, dim: int, heads: int, sources: tuple[str, ...], gated: tuple[str, ...], softmax: str,
                 separate_kv: bool):
        super().__init__()
        if dim % heads:
            raise ValueError(f"policy width {dim} is not divisible by {heads} heads")
        self.heads, self.sources, self.softmax = heads, sources, softmax
        self.q = nn.Linear(dim, dim)
        names = sources if separate_kv else ("shared",)
        self.kv = nn.ModuleDict({name: nn.Linear(dim, 2 * dim) for name in names})
        self.gates = nn.ParameterDict({name: nn.Parameter(torch.zeros(())) for name in gated})
        self.proj = nn.Linear(dim, dim)
        self.last_mass: dict[str, float] = {}
        self.record = False

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)  # (b, h, n, d/h)

    def gate(self, name: str) -> torch.Tensor | None:
        return torch.tanh(self.gates[name]) if name in self.gates else None

    def forward(self, x: torch.Tensor, context: dict[str, torch.Tensor], open_tail: dict[str, int] | None = None
                ) -> torch.Tensor:
        """x (b, t, d); context: source name -> (b, n_s, d) normed features (includes "self");
        open_tail: source -> number of its last tokens the gate does not apply to (the proprio token); with
        `separate` they get their own softmax, with `joint` their logits are left unscaled."""
        open_tail = open_tail or {}
        b, t, d = x.shape
        q = self._split(self.q(x))
        scale = q.shape[-1] ** -0.5
        logits, values = {}, {}
        for name in self.sources:
            kv = self.kv[name if name in self.kv else "shared"](context[name])
            k, v = kv.chunk(2, dim=-1)
            logits[name] = (q @ self._split(k).transpose(-1, -2)) * scale  # (b, h, t, n_s)
            values[name] = self._split(v)
        if self.softmax == "joint":
            for name in self.sources:
                g = self.gate(name)
                if g is not None:
                    lg = logits[name]
                    n = lg.shape[-1] - open_tail.get(name, 0)  # the open tail's logits stay unscaled
                    factor = torch.ones(lg.shape[-1], dtype=lg.dtype, device=lg.device)
                    logits[name] = lg * torch.cat([g.expand(n).to(lg.dtype), factor[n:]])
            weights = torch.cat([logits[n] for n in self.sources], dim=-1).softmax(dim=-1)
            parts = weights.split([logits[n].shape[-1] for n in self.sources], dim=-1)
            out = sum(w.to(values[n].dtype) @ values[n] for w, n in zip(parts, self.sources))
            if self.record:
                self.last_mass = {n: w.float().sum(-1).mean().item() for w, n in zip(parts, self.sources)}
        else:
            contributions = {}
            for name in self.sources:
                lg, v = logits[name], values[name]  # (b, h, t, n_s), (b, h, n_s, d/h)
                g, tail = self.gate(name), open_tail.get(name, 0)
                if g is None:
                    contributions[name] = lg.softmax(dim=-1).to(v.dtype) @ v  # (b, h, t, d/h)
                elif tail:  # gated head and open tail, each with its own softmax: gate 0 removes the head
                    head = lg[..., :-tail].softmax(dim=-1).to(v.dtype) @ v[..., :-tail, :]
                    rest = lg[..., -tail:].softmax(dim=-1).to(v.dtype) @ v[..., -tail:, :]
                    contributions[name] = head * g.to(v.dtype) + rest
                else:
                    contributions[name] = (lg.softmax(dim=-1).to(v.dtype) @ v) * g.to(v.dtype)
            out = sum(contributions.values())
            if self.record:  # share of the summed output's magnitude that each source supplies
                norms = {n: c.float().norm(dim=-1).mean().item() for n, c in contributions.items()}
                total = sum(norms.values()) or 1.0
                self.last_mass = {n: v / total for n, v in norms.items()}
        return self.proj(out.transpose(1, 2).reshape(b, t, d))


class BridgeBlock(nn.Module):
    """x + BridgeAttention(norm(x), conditions); x + FFN(norm(x))."""

    def __init__(self, *, dim: int, heads: int, sources: tuple[str, ...], gated: tuple[str, ...], softmax: str,
                 separate_kv: bool, ffn: str):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.cond_norms = nn.ModuleDict({n: nn.LayerNorm(dim) for n in sources if n != "self"})
        self.attn = BridgeAttention(dim=dim, heads=heads, sources=sources, gated=gated, softmax=softmax,
                                    separate_kv=separate_kv)
        self.ffn_norm = nn.LayerNorm(dim)
        if ffn == "linear":  # the paper's block: LayerNorm, Linear, ReLU
            self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())
        else:
            self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, conditions: dict[str, torch.Tensor], open_tail: dict[str, int] | None = None
                ) -> torch.Tensor:
        h = self.norm(x)
        context = {"self": h, **{n: self.cond_norms[n](c) for n, c in conditions.items()}}
        x = x + self.attn(h, context, open_tail)
        return x + self.ffn(self.ffn_norm(x))


class BridgePolicy(nn.Module):
    """Action latent (t learned tokens) refined by one BridgeBlock per backbone layer -> (b, t, a)."""

    def __init__(self, *, dim: int, heads: int, blocks: int, chunk: int, action_dim: int, state_dim: int,
                 sources: tuple[str, ...], gated: tuple[str, ...], softmax: str, separate_kv: bool, ffn: str,
                 gate_proprio: bool = True):
        super().__init__()
        self.gate_proprio = gate_proprio
        self.latent = nn.Parameter(torch.zeros(1, chunk, dim))
        nn.init.trunc_normal_(self.latent, std=0.02)  # distinct tokens, so chunk steps can differ
        self.proprio = (nn.Sequential(nn.Linear(state_dim, dim), nn.GELU(), nn.Linear(dim, dim))
                        if state_dim else None)
        self.blocks = nn.ModuleList(
            BridgeBlock(dim=dim, heads=heads, sources=sources, gated=gated, softmax=softmax,
                        separate_kv=separate_kv, ffn=ffn) for _ in range(blocks)
        )
        self.out_norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, action_dim)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, raw: list[torch.Tensor | None], aq: list[torch.Tensor | None],
                state: torch.Tensor | None) -> torch.Tensor:
        """raw/aq: per block (b, r, d) / (b, q, d) or None; state (b, s) normalised or None."""
        b = state.shape[0] if state is not None else next(x for x in raw + aq if x is not None).shape[0]
        x = self.latent.expand(b, -1, -1)
        proprio = self.proprio(state).unsqueeze(1) if self.proprio is not None else None  # (b, 1, d)
        open_tail = {"aq": 1} if proprio is not None and not self.gate_proprio else {}
        for block, r, a in zip(self.blocks, raw, aq):
            conditions = {}
            aq_parts = [p for p in (a, proprio) if p is not None]
            if "aq" in block.cond_norms:
                conditions["aq"] = torch.cat(aq_parts, dim=1) if len(aq_parts) > 1 else aq_parts[0]
            if "raw" in block.cond_norms:
                conditions["raw"] = r
            x = block(x, conditions, open_tail)
        return self.out(self.out_norm(x))

    def gate_values(self) -> list[dict[str, float]]:
        return [{n: torch.tanh(g).item() for n, g in blk.attn.gates.items()} for blk in self.blocks]


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(pred.float(), target.float())
