"""LoRA (Hu et al. 2021) on the runtime's decoder, fused matrices included.

A LoRA adapter leaves a weight W (out, in) frozen and learns a low-rank change:

    y = x Wᵀ + (alpha / r) · dropout(x) Aᵀ Bᵀ        A (r, in), B (out, r); B starts at zero

so training starts from exactly the base model, and only r · (in + out) numbers per matrix
learn. Our runtime stores q, k, v as one matrix `attn.qkv` and gate, up as one `mlp.gate_up`
(one matmul each instead of three and two). Each LoRA target is a row slice of the fused
output, with its own A and B, so `q` here is what PEFT's `q_proj` is:

    qkv rows [0, nh·hs)           q       mlp.gate_up rows [0, I)    gate
    qkv rows [nh·hs, (nh+nkv)·hs) k       mlp.gate_up rows [I, 2I)   up
    qkv rows [(nh+nkv)·hs, end)   v       attn.out: o     mlp.down: down    (mlp.up in GPT-2: up)

The frozen fused matmul runs once. The adapters of one matrix run as one pair of matmuls: their
A's stacked (n·r, in), their B's block-diagonal (out, n·r), so each B writes only its own rows
(no per-slice matmuls, no in-place slice updates for autograd to copy around).
`merge` adds (alpha / r) · B A into exactly those rows of W: the merged model computes the
same function without the adapter (to float rounding).
"""

from __future__ import annotations

import torch
from torch import nn

ALL_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")
PEFT_NAMES = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o", "gate_proj": "gate",
              "up_proj": "up", "down_proj": "down"}  # fmt: skip


def normalize_targets(targets) -> tuple[str, ...]:
    from ..errors import UsageError

    if targets in (None, "all", "all-linear"):
        return ALL_TARGETS
    if isinstance(targets, str):
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    out = []
    for t in targets:
        name = PEFT_NAMES.get(t, t)
        if name not in ALL_TARGETS:
            raise UsageError(f"Unknown LoRA target {t!r}. Use some of {', '.join(ALL_TARGETS)} (or PEFT's q_proj, ...).")
        out.append(name)
    return tuple(dict.fromkeys(out))


class LoRALinear(nn.Module):
    """A frozen linear layer (any nn.Linear subclass) plus LoRA adapters on row slices of its output."""

    def __init__(self, base: nn.Linear, slices: dict[str, tuple[int, int]], rank: int, alpha: float, dropout: float):
        super().__init__()
        self.base = base
        self.slices = dict(sorted(slices.items(), key=lambda item: item[1]))  # in row order
        self.rank, self.alpha, self.scale = rank, alpha, alpha / rank
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.lora_A = nn.ParameterDict()
        self.lora_B = nn.ParameterDict()
        for name, (start, end) in self.slices.items():
            a = torch.empty(rank, base.in_features)
            nn.init.kaiming_uniform_(a, a=5**0.5)  # as nn.Linear (and PEFT) initialise A
            self.lora_A[name] = nn.Parameter(a)  # (r, in)
            self.lora_B[name] = nn.Parameter(torch.zeros(end - start, rank))  # (out_slice, r): starts as no change

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self):
        return self.base.weight

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every adapter of this layer as one pair: A (n·r, in) stacked, and B (out, n·r) block-diagonal,
        each B on its own rows and columns, zero rows where no target is."""
        a = torch.cat([self.lora_A[name] for name in self.slices])  # (n·r, in)
        blocks, row = [], 0
        for name, (start, end) in self.slices.items():  # in row order
            b = self.lora_B[name]  # (out_slice, r)
            blocks += [b.new_zeros(start - row, 0), b]  # a (gap, 0) block adds untargeted rows and no column
            row = end
        blocks.append(b.new_zeros(self.out_features - row, 0))
        return a, torch.block_diag(*blocks)  # (n·r, in), (out, n·r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.flatten(0, -2)  # (N, in): every position of the batch
        y = self.base(x2)  # (N, out): the frozen fused product
        a, b = self.stacked()
        low = self.dropout(x2) @ (self.scale * a).T  # (N, n·r): every adapter's down-projection, scaled, in one matmul
        y.addmm_(low, b.T)  # y += low Bᵀ in place: each adapter's up-projection lands on its own rows
        return y.view(*x.shape[:-1], -1)  # (..., out)

    @torch.no_grad()
    def merged_weight(self) -> torch.Tensor:
        """W + (alpha / r) · B A, each adapter on its target's rows."""
        a, b = self.stacked()
        return self.base.weight + (self.scale * (b @ a)).to(self.base.weight.dtype)  # (out, in)


def target_slices(module: nn.Module, config) -> list[tuple[str, dict[str, tuple[int, int]]]]:
    """(module path, {target: (row start, row end)}) for each linear layer of a runtime Decoder."""
    nh, nkv, hs = config.n_head, config.n_kv_head, config.head_dim
    found = []
    for i, block in enumerate(module.blocks):
        p = f"blocks.{i}."
        found.append((p + "attn.qkv", {"q": (0, nh * hs), "k": (nh * hs, (nh + nkv) * hs), "v": ((nh + nkv) * hs, (nh + 2 * nkv) * hs)}))
        found.append((p + "attn.out", {"o": (0, block.attn.out.out_features)}))
        if hasattr(block.mlp, "gate_up"):
            inter = block.mlp.down.in_features
            found.append((p + "mlp.gate_up", {"gate": (0, inter), "up": (inter, 2 * inter)}))
        else:
            found.append((p + "mlp.up", {"up": (0, block.mlp.up.out_features)}))
        found.append((p + "mlp.down", {"down": (0, block.mlp.down.out_features)}))
    return found


def _set(module: nn.Module, path: str, new: nn.Module) -> None:
    parent, _, leaf = path.rpartition(".")
    setattr(module.get_submodule(parent), leaf, new)


def inject(module: nn.Module, *, rank: int = 8, alpha: float = 16, dropout: float = 0.05, targets=ALL_TARGETS) -> int:
    """Freeze `module` and wrap its target linear layers with LoRA; returns the trainable parameter count."""
    targets = normalize_targets(targets)
    for p in module.parameters():
        p.requires_grad_(False)
    for path, slices in target_slices(module, module.config):
        chosen = {name: s for name, s in slices.items() if name in targets}
        if chosen:
            base = module.get_submodule(path)
            _set(module, path, LoRALinear(base, chosen, rank, alpha, dropout))
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def lora_layers(module: nn.Module):
    return [(name, m) for name, m in module.named_modules() if isinstance(m, LoRALinear)]


def adapter_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapters' tensors, named `blocks.3.attn.qkv.lora_A.q`."""
    return {k: v.detach().clone().contiguous() for k, v in module.state_dict().items() if ".lora_A." in k or ".lora_B." in k}


@torch.no_grad()
def load_adapter(module: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    own = module.state_dict()
    missing = [k for k in own if (".lora_" in k) and k not in tensors]
    unknown = [k for k in tensors if k not in own]
    if missing or unknown:
        raise ValueError(f"The adapter does not fit this model: missing {missing[:3]}, unexpected {unknown[:3]}")
    for k, v in tensors.items():
        own[k].copy_(v)


@torch.no_grad()
def merge(module: nn.Module) -> int:
    """Fold every adapter into its base weight and unwrap it; returns how many layers were merged."""
    layers = lora_layers(module)
    for path, layer in layers:
        layer.base.weight.copy_(layer.merged_weight())
        _set(module, path, layer.base)
    return len(layers)
