"""Why attention replaced recurrence, measured: gradient reach and sequential steps.

For a layer y = f(x) over a sequence x_1 .. x_T, take the output at the last step, y_T, and ask
how strongly it depends on each input x_t:

    reach[T - t] = ‖∂y_T / ∂x_t‖_F     (the Frobenius norm of that Jacobian block)

That is the size of the gradient that reaches token t when a loss is put on step T. In an RNN
it is a product of T - t Jacobians diag(tanh') · W_hh, so it shrinks (or grows) geometrically
with the distance. An LSTM's cell state is updated by a gated sum, so the product is one of
forget gates, which decays more slowly where the gates stay open. Self-attention connects
y_T to every x_t through one weighted sum, so the reach does not depend on the distance.

The second difference is time: the RNN's step t needs step t-1, so T steps run one after
another, while attention computes every position at once. `critical_path` measures it on the
autograd graph: the longest chain of operations from y_T back to the input. It grows with T
for a recurrent layer and stays the same for attention.

    >>> from llm_magics.lessons import gradients
    >>> r = gradients.compare(T=64)            # RNN, LSTM and attention at init
    >>> r["rnn"].reach[50] / r["rnn"].reach[1]  # ~1e-15: vanished
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Reach:
    """What `measure` found for one layer."""

    name: str
    reach: np.ndarray  # (T,): reach[k] = mean over the batch of ‖∂y_T / ∂x_{T-k}‖, k = distance
    critical_path: dict[int, int] = field(default_factory=dict)  # sequence length -> longest op chain
    sequential_steps: int = 0  # steps that must run one after another for T positions

    @property
    def T(self) -> int:
        return len(self.reach)

    def decay(self, distance: int, start: int = 1) -> float:
        """reach[distance] / reach[start]: how much of the signal is left that much further back."""
        return float(self.reach[distance] / self.reach[start])

    def __repr__(self) -> str:
        picks = [k for k in (1, 10, 50) if k < self.T]
        shown = ", ".join(f"d={k}: {self.reach[k]:.1e}" for k in picks)
        return f"Reach({self.name!r}, {shown}; sequential steps for T={self.T}: {self.sequential_steps})"


def jacobian_norms(fn, x, probes: int | None = None, seed: int = 0):
    """‖∂fn(x)[:, -1] / ∂x[:, t]‖_F for each t, averaged over the batch: (T,) numpy, index = position.

    fn maps (B, T, C) -> (B, T, H). Exact: one backward pass per output unit of the last step.
    probes=k estimates it with k random Gaussian directions v instead (E‖vᵀJ‖² = ‖J‖²_F),
    k backward passes whatever H is: plenty to see orders of magnitude.
    """
    import torch

    x = x.detach().clone().requires_grad_(True)
    y = fn(x)[:, -1]  # (B, H): the output at the last step
    squares = torch.zeros(x.shape[0], x.shape[1], dtype=x.dtype)  # (B, T)
    if probes:
        gen = torch.Generator().manual_seed(seed)
        directions = [torch.randn(y.shape, generator=gen, dtype=y.dtype) for _ in range(probes)]
    else:
        directions = [torch.nn.functional.one_hot(torch.full(y.shape[:1], j), y.shape[1]).to(y.dtype) for j in range(y.shape[1])]
    for v in directions:
        (g,) = torch.autograd.grad(y, x, grad_outputs=v, retain_graph=True)  # (B, T, C): vᵀ J for each block
        squares += g.pow(2).sum(-1)
    if probes:
        squares /= probes
    return squares.sqrt().mean(0).numpy()  # (T,)


def critical_path(fn, x) -> int:
    """The longest chain of autograd operations from fn(x)'s last step back to x: the work that
    cannot run in parallel (for a recurrent layer it grows with T; for attention it does not)."""
    x = x.detach().clone().requires_grad_(True)
    root = fn(x)[:, -1].sum().grad_fn
    longest: dict = {}  # node -> longest path from it down to x (or None when x is unreachable)
    stack = [(root, False)]
    while stack:  # iterative post-order: the graphs are thousands of nodes deep
        node, expanded = stack.pop()
        if node in longest:
            continue
        if getattr(node, "variable", None) is x:
            longest[node] = 0
            continue
        children = [child for child, _ in node.next_functions if child is not None]
        if not expanded:
            stack.append((node, True))
            stack.extend((child, False) for child in children if child not in longest)
            continue
        reach = [longest[child] for child in children if longest.get(child) is not None]
        longest[node] = 1 + max(reach) if reach else None
    return longest[root] or 0


def measure(name: str, fn, x, *, probes: int | None = None, sequential: bool = True) -> Reach:
    """Gradient reach of fn over x (B, T, C), and its sequential steps measured on the graph.

    The critical path is measured at T and 2T: if it grows, every position waits for the one
    before (sequential steps = T); if not, all positions run at once (1 step).
    probes: see `jacobian_norms`; sequential=False skips the critical path (sequential_steps 0).
    """
    import torch

    T = x.shape[1]
    norms = jacobian_norms(fn, x, probes)[::-1].copy()  # index by distance T-1-t
    if not sequential:
        return Reach(name, norms)
    longer = torch.cat([x, x], dim=1)  # (B, 2T, C)
    paths = {T: critical_path(fn, x), 2 * T: critical_path(fn, longer)}
    grows = paths[2 * T] > paths[T]
    return Reach(name, norms, paths, T if grows else 1)


def layers(width: int = 32, n_head: int = 4, seed: int = 0) -> dict:
    """A fresh RNN, LSTM and causal self-attention layer of the same width, at PyTorch's default init."""
    import torch

    from ..runtime.layers import MultiHeadSelfAttention
    from ..runtime.rnn import LSTM, RNN

    torch.manual_seed(seed)
    rnn, lstm = RNN(width, width), LSTM(width, width)
    attn = MultiHeadSelfAttention(width, n_head, n_head, causal=True, bias=True)
    return {"rnn": lambda x: rnn(x)[0], "lstm": lambda x: lstm(x)[0], "attention": attn}


def compare(T: int = 64, width: int = 32, batch: int = 4, seed: int = 0, fns: dict | None = None) -> dict[str, Reach]:
    """Measure each layer (default: `layers()`) on the same random inputs (batch, T, width)."""
    import torch

    fns = fns or layers(width, seed=seed)
    x = torch.randn(batch, T, width, generator=torch.Generator().manual_seed(seed))
    return {name: measure(name, fn, x) for name, fn in fns.items()}


def plot(results: dict[str, Reach], ax=None):
    """Reach against distance, log scale, one line per layer (matplotlib)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 4))[1]
    for r in results.values():
        ax.semilogy(np.arange(1, r.T), r.reach[1:], label=f"{r.name} ({r.sequential_steps} sequential steps)")
    ax.set_xlabel("distance T - t (tokens back from the output)")
    ax.set_ylabel("‖∂y_T / ∂x_t‖")
    ax.set_title("How much gradient reaches a token, by distance")
    ax.legend()
    return ax
