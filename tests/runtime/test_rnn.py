"""The readable RNN and LSTM (runtime/rnn.py) against torch.nn.LSTM / torch.nn.RNN on the same weights."""

from __future__ import annotations

import pytest
import torch

from llm_magics.runtime.rnn import LSTM, RNN, CharModel, RecurrentConfig

B, T, I, H = 3, 17, 5, 8


def _max_diff(a, b) -> float:
    return (a - b).abs().max().item()


def _both(kind: str, dtype, num_layers: int, **kw):
    torch.manual_seed(0)
    if kind == "lstm":
        ref = torch.nn.LSTM(I, H, num_layers=num_layers, batch_first=True, **kw)
        ours = LSTM(I, H, num_layers=num_layers, **kw)
    else:
        ref = torch.nn.RNN(I, H, num_layers=num_layers, batch_first=True, **kw)
        ours = RNN(I, H, num_layers=num_layers, **kw)
    ref, ours = ref.to(dtype), ours.to(dtype)
    ours.load_torch(ref)
    return ref, ours


# float64 shows the arithmetic is the same; float32 differs only by rounding order (sums over B·T terms)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind, kw", [("lstm", {}), ("rnn", {}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {"bias": False})])
def test_forward_state_and_gradients_equal_torch(kind, kw, num_layers, dtype, tol):
    ref, ours = _both(kind, dtype, num_layers, **kw)
    x = torch.randn(B, T, I, dtype=dtype)
    L = num_layers
    h0 = torch.randn(L, B, H, dtype=dtype)
    state = (h0, torch.randn(L, B, H, dtype=dtype)) if kind == "lstm" else h0

    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ref, final_ref = ref(x_ref, state)
    out_ours, final_ours = ours(x_ours, state)
    assert out_ours.shape == (B, T, H)
    assert _max_diff(out_ours, out_ref) < tol
    if kind == "lstm":
        assert _max_diff(final_ours[0], final_ref[0]) < tol  # h_T per layer
        assert _max_diff(final_ours[1], final_ref[1]) < tol  # c_T per layer
    else:
        assert _max_diff(final_ours, final_ref) < tol

    # The same loss, backpropagated through both: equal input and weight gradients.
    w = torch.randn(B, T, H, dtype=dtype)
    ((out_ref * w).sum() + (final_ref[0] if kind == "lstm" else final_ref).sum()).backward()
    ((out_ours * w).sum() + (final_ours[0] if kind == "lstm" else final_ours).sum()).backward()
    assert _max_diff(x_ours.grad, x_ref.grad) < tol
    for k, layer in enumerate(ours.layers):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            if getattr(layer, name) is not None:
                assert _max_diff(getattr(layer, name).grad, getattr(ref, f"{name}_l{k}").grad) < tol, name


def test_the_capture_records_each_gate_and_the_cell_state_by_the_formulas():
    ref, ours = _both("lstm", torch.float64, 2)
    x = torch.randn(B, T, I, dtype=torch.float64)
    out, (h_n, c_n), cache = ours.run_with_cache(x)
    names = {f"layers.{k}.hook_{n}" for k in (0, 1) for n in ("input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden")}
    assert set(cache) == names
    i, f, g, o = (cache[f"layers.1.hook_{n}"] for n in ("input_gate", "forget_gate", "candidate", "output_gate"))
    c, h = cache["layers.1.hook_cell"], cache["layers.1.hook_hidden"]
    assert i.shape == f.shape == g.shape == o.shape == c.shape == h.shape == (B, T, H)
    assert 0 < i.min() and i.max() < 1 and 0 < f.min() and f.max() < 1 and -1 < g.min() and g.max() < 1
    # c_t = f_t c_{t-1} + i_t g_t and h_t = o_t tanh(c_t), checked from the recorded values
    assert _max_diff(c[:, 1:], f[:, 1:] * c[:, :-1] + i[:, 1:] * g[:, 1:]) < 1e-12
    assert _max_diff(h, o * torch.tanh(c)) < 1e-12
    assert _max_diff(h, out) < 1e-12 and _max_diff(c[:, -1], c_n[1]) < 1e-12
    # and the first layer's gates are torch's, recomputed from its weights
    z = x[:, 0] @ ref.weight_ih_l0.T + ref.bias_ih_l0 + ref.bias_hh_l0  # h_0 = 0
    assert _max_diff(cache["layers.0.hook_forget_gate"][:, 0], torch.sigmoid(z[:, H : 2 * H])) < 1e-12


def test_char_model_learns_a_repeating_string():
    torch.manual_seed(0)
    text = "abcab" * 40
    vocab = sorted(set(text))
    ids = torch.tensor([[vocab.index(ch) for ch in text]])
    model = CharModel(len(vocab), RecurrentConfig("lstm", input_size=8, hidden_size=16))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        logits, _ = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1  # a period-5 pattern needs memory of two steps back ("ab" -> "c" or "a")
    continued = "".join(vocab[i] for i in model.sample([vocab.index(ch) for ch in "abcab"], 10, temperature=0.1))
    assert continued == "abcababcab"
