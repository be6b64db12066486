"""Recurrent networks: the RNN and the LSTM, one time step at a time.

Before attention, a language model read its text left to right, carrying a hidden
state h from one step to the next. Everything it remembers about the past must fit
through h, and step t cannot start before step t-1 is done.

    RNN (Elman 1990):
        h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

    LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000):
        i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)   input gate:  how much of the candidate to write
        f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)   forget gate: how much of the old cell to keep
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg) candidate:  what could be written
        o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)   output gate: how much of the cell to show
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                  cell state:  the long-term memory, updated by addition
        h_t = o_t ⊙ tanh(c_t)                            hidden state: what the next step and layer see

The cell state is the LSTM's point: it is changed by a gated *sum*, not squashed through a
matrix and a tanh at every step, so a gradient can travel back along it as far as the
forget gates stay open. (``llm_magics.lessons.gradients`` measures how far.)

The parameters have torch.nn.LSTM / torch.nn.RNN's layout: ``weight_ih`` is the four
gates' input matrices stacked in the order (i, f, g, o), (4H, I); ``weight_hh`` the
recurrent ones, (4H, H). ``load_torch`` copies the weights of a torch module across
(``weight_ih_l0`` -> ``layers.0.weight_ih``), and a parity test holds the two equal.

Shape letters: B batch, T time steps, I input width, H hidden width, L layers.
With a capture (``ActivationCache``) the LSTM records, per layer, under
``layers.{k}.hook_input_gate / hook_forget_gate / hook_candidate / hook_output_gate /
hook_cell / hook_hidden``, each (B, T, H); the RNN records ``layers.{k}.hook_hidden``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .capture import ActivationCache

GATES = ("input_gate", "forget_gate", "candidate", "output_gate")  # the order of weight_ih's row blocks


@dataclass
class RecurrentConfig:
    kind: str = "lstm"  # "lstm" or "rnn"
    input_size: int = 32  # I: width of each input vector
    hidden_size: int = 64  # H: width of h (and of the LSTM's c)
    num_layers: int = 1  # L: layer k reads layer k-1's hidden states
    nonlinearity: str = "tanh"  # RNN only: "tanh" or "relu"
    bias: bool = True


# ─── one step ─────────────────────────────────────────────────────────────────


class RNNLayer(nn.Module):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), for t = 1 .. T."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"):
        super().__init__()
        self.hidden_size = hidden_size
        self.act = torch.tanh if nonlinearity == "tanh" else torch.relu
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))  # (H, I)
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))  # (H, H)
        self.bias_ih = nn.Parameter(torch.empty(hidden_size)) if bias else None  # (H,)
        self.bias_hh = nn.Parameter(torch.empty(hidden_size)) if bias else None
        _init_uniform(self)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, I), h (B, H) -> (hidden states (B, T, H), last h (B, H))."""
        # The input projection has no dependence between steps: one matrix multiply for all T.
        xw = _linear(x, self.weight_ih, _add(self.bias_ih, self.bias_hh))  # (B, T, H), both biases folded in
        hs, w_hh = [], self.weight_hh.T  # (H, H)
        for t in range(x.shape[1]):  # the recurrence: step t needs h from step t-1
            h = self.act(torch.addmm(xw[:, t], h, w_hh))  # (B, H) = act(x_t W_ihᵀ + b + h_{t-1} W_hhᵀ)
            hs.append(h)
        return torch.stack(hs, dim=1), h  # (B, T, H), (B, H)


class LSTMLayer(nn.Module):
    """The four gates, the cell state and the hidden state, for t = 1 .. T."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))  # (4H, I): rows i, f, g, o
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))  # (4H, H)
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None  # (4H,)
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        _init_uniform(self)

    def forward(self, x, h, c, record=None):
        """x (B, T, I), h and c (B, H) -> (hidden states (B, T, H), last h, last c).

        record: a dict to fill with each gate and state over time, name -> (B, T, H).
        """
        # The input side of every gate, for all steps at once (no step depends on another here),
        # with both biases folded in: (B, T, I) @ (I, 4H) -> (B, T, 4H).
        xw = _linear(x, self.weight_ih, _add(self.bias_ih, self.bias_hh))
        hs, steps = [], {name: [] for name in (*GATES, "cell")}
        w_hh = self.weight_hh.T  # (H, 4H)
        for t in range(x.shape[1]):  # the recurrence: step t needs h and c from step t-1
            z = torch.addmm(xw[:, t], h, w_hh)  # (B, 4H) = x_t W_ihᵀ + b + h_{t-1} W_hhᵀ: every gate's pre-activation
            zi, zf, zg, zo = z.chunk(4, dim=-1)  # 4 × (B, H)
            i = torch.sigmoid(zi)  # input gate, in (0, 1)
            f = torch.sigmoid(zf)  # forget gate, in (0, 1)
            g = torch.tanh(zg)  # candidate, in (-1, 1)
            o = torch.sigmoid(zo)  # output gate, in (0, 1)
            c = f * c + i * g  # (B, H): keep some of the old memory, write some of the new
            h = o * torch.tanh(c)  # (B, H): show some of the memory
            hs.append(h)
            if record is not None:
                for name, value in zip((*GATES, "cell"), (i, f, g, o, c)):
                    steps[name].append(value)
        out = torch.stack(hs, dim=1)  # (B, T, H)
        if record is not None:
            record.update({name: torch.stack(values, dim=1) for name, values in steps.items()})  # each (B, T, H)
            record["hidden"] = out
        return out, h, c  # (B, T, H), (B, H), (B, H)


def _linear(x, weight, bias):
    y = x @ weight.T  # (..., in) @ (in, out) -> (..., out)
    return y + bias if bias is not None else y


def _add(a, b):
    return b if a is None else a if b is None else a + b


def _init_uniform(layer: nn.Module) -> None:
    """torch.nn.LSTM's default: every weight and bias uniform in ±1/√H."""
    bound = 1.0 / math.sqrt(layer.hidden_size)
    for p in layer.parameters():
        nn.init.uniform_(p, -bound, bound)


# ─── layers stacked over time ───────────────────────────────────────────────────


class Recurrent(nn.Module):
    """A stack of L RNN or LSTM layers, batch first: (B, T, I) -> (B, T, H)."""

    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.config = c = config
        if c.kind not in ("lstm", "rnn"):
            raise ValueError(f"kind must be 'lstm' or 'rnn', not {c.kind!r}")
        widths = [c.input_size] + [c.hidden_size] * (c.num_layers - 1)
        if c.kind == "lstm":
            self.layers = nn.ModuleList(LSTMLayer(w, c.hidden_size, c.bias) for w in widths)
        else:
            self.layers = nn.ModuleList(RNNLayer(w, c.hidden_size, c.bias, c.nonlinearity) for w in widths)

    def forward(self, x: torch.Tensor, state=None, capture: ActivationCache | None = None):
        """x (B, T, I) -> (output (B, T, H): the last layer's h at every step, final state).

        state and the final state: h (L, B, H) for an RNN, (h, c) each (L, B, H) for an LSTM,
        as torch.nn.LSTM returns them. capture: records gates and states (module docstring).
        """
        B, L, H = x.shape[0], self.config.num_layers, self.config.hidden_size
        lstm = self.config.kind == "lstm"
        if state is None:
            zeros = x.new_zeros(L, B, H)
            state = (zeros, zeros) if lstm else zeros
        h0, c0 = state if lstm else (state, None)
        last_h, last_c = [], []
        for k, layer in enumerate(self.layers):
            if lstm:
                record = {} if capture is not None else None
                x, h, c = layer(x, h0[k], c0[k], record)  # (B, T, H)
                last_c.append(c)
                for name, value in (record or {}).items():
                    capture.record(f"layers.{k}.hook_{name}", value)
            else:
                x, h = layer(x, h0[k])
                if capture is not None:
                    capture.record(f"layers.{k}.hook_hidden", x)
            last_h.append(h)
        h_n = torch.stack(last_h)  # (L, B, H)
        return x, ((h_n, torch.stack(last_c)) if lstm else h_n)

    def run_with_cache(self, x: torch.Tensor, state=None):
        """(output, final state, cache) with every gate and state recorded, batch dimension kept."""
        cache = ActivationCache()
        output, final = self(x, state, capture=cache)
        return output, final, cache

    @torch.no_grad()
    def load_torch(self, module: nn.Module) -> "Recurrent":
        """Copy the weights of a torch.nn.LSTM / torch.nn.RNN (batch_first or not) into this stack."""
        for k, layer in enumerate(self.layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                if getattr(layer, name) is not None:
                    getattr(layer, name).copy_(getattr(module, f"{name}_l{k}"))
        return self


def LSTM(input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True) -> Recurrent:
    return Recurrent(RecurrentConfig("lstm", input_size, hidden_size, num_layers, bias=bias))


def RNN(input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh", bias: bool = True) -> Recurrent:
    return Recurrent(RecurrentConfig("rnn", input_size, hidden_size, num_layers, nonlinearity, bias))


# ─── a character-level language model ─────────────────────────────────────────


class CharModel(nn.Module):
    """Characters in, next-character logits out: embed -> RNN/LSTM -> linear.

        ids (B, T) -> embed (B, T, I) -> recurrent (B, T, H) -> head (B, T, vocab)
    """

    def __init__(self, vocab_size: int, config: RecurrentConfig):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, config.input_size)  # (vocab, I)
        self.recurrent = Recurrent(config)
        self.head = nn.Linear(config.hidden_size, vocab_size)  # (H) -> (vocab)

    def forward(self, ids: torch.Tensor, state=None, capture=None):
        """ids (B, T) -> (logits (B, T, vocab), final state)."""
        out, state = self.recurrent(self.embed(ids), state, capture)  # (B, T, H)
        return self.head(out), state

    @torch.no_grad()
    def sample(self, prompt_ids: list[int], n: int, temperature: float = 0.8, seed: int = 0) -> list[int]:
        """Continue prompt_ids by n characters, carrying the state (no re-reading of the prompt)."""
        gen = torch.Generator().manual_seed(seed)
        logits, state = self(torch.tensor([prompt_ids]))
        out = []
        for _ in range(n):
            probs = (logits[0, -1] / max(temperature, 1e-6)).softmax(-1)  # (vocab,)
            nxt = int(torch.multinomial(probs, 1, generator=gen))
            out.append(nxt)
            logits, state = self(torch.tensor([[nxt]]), state)
        return out
