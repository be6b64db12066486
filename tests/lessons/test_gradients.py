"""The gradient-reach lesson: why attention replaced recurrence, as measurements that must hold."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from llm_magics.lessons import gradients  # noqa: E402

T = 64


@pytest.fixture(scope="module")
def reach():
    torch.set_num_threads(2)
    return gradients.compare(T=T, width=32, batch=4, seed=0)


def test_rnn_gradient_vanishes_by_orders_of_magnitude_over_50_steps(reach):
    rnn = reach["rnn"]
    assert rnn.decay(50) < 1e-6  # measured ~1e-18 at PyTorch's default init
    assert np.all(np.diff(np.log10(rnn.reach[1:40])) < 0)  # every step further back, smaller


def test_lstm_keeps_more_of_the_gradient_than_the_rnn_but_still_decays(reach):
    lstm, rnn = reach["lstm"], reach["rnn"]
    assert lstm.decay(50) < 1e-3
    assert lstm.decay(50) > 1e3 * rnn.decay(50)  # the additive cell state carries it further


def test_attention_reach_does_not_depend_on_distance(reach):
    attn = reach["attention"].reach[1:]  # distance 0 also feeds the query: leave it out
    assert attn.max() / attn.min() < 2.0
    slope = np.polyfit(np.arange(1, T), np.log10(attn), 1)[0]  # log10 change per token of distance
    assert abs(slope * 50) < 0.2  # under 0.2 orders of magnitude over 50 tokens (the RNN: > 6)


def test_sequential_steps_recurrent_is_T_attention_is_one(reach):
    assert reach["rnn"].sequential_steps == T
    assert reach["lstm"].sequential_steps == T
    assert reach["attention"].sequential_steps == 1
    for name in ("rnn", "lstm"):  # the chain of dependent operations doubles with the sequence
        paths = reach[name].critical_path
        assert paths[2 * T] >= 1.9 * paths[T]
    assert reach["attention"].critical_path[2 * T] == reach["attention"].critical_path[T]


def test_jacobian_norms_match_the_full_jacobian():
    torch.manual_seed(1)
    lin = torch.nn.Linear(3, 2)

    def fn(x):  # a causal running sum then a linear map: y_T depends on every x_t
        return lin(x.cumsum(dim=1))

    x = torch.randn(1, 5, 3, dtype=torch.float32)
    jac = torch.autograd.functional.jacobian(lambda z: fn(z)[:, -1], x)  # (1, 2, 1, 5, 3)
    expected = jac[0, :, 0].pow(2).sum(dim=(0, 2)).sqrt().numpy()  # (5,)
    assert np.allclose(gradients.jacobian_norms(fn, x), expected, rtol=1e-5)


def test_random_probes_estimate_the_same_reach():
    torch.manual_seed(2)
    rnn = torch.nn.RNN(8, 16, batch_first=True)
    x = torch.randn(2, 20, 8)
    exact = gradients.jacobian_norms(lambda z: rnn(z)[0], x)
    estimate = gradients.jacobian_norms(lambda z: rnn(z)[0], x, probes=64)
    assert np.all(np.abs(np.log10(estimate / exact)) < 0.3)  # within a factor of 2 at every position
