"""``%attnviz`` in a real IPython shell, with the real runtime models."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from IPython.core.error import UsageError as IPythonUsageError

from llm_magics.widgets import AttentionWidget, _codec


def test_importing_the_magic_and_widgets_does_not_import_torch():
    code = "import sys, llm_magics.magics.attnviz, llm_magics.widgets; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_help_lists_the_options(attn_shell):
    doc = attn_shell.find_line_magic("attnviz").__doc__
    for option in ("--model", "--view", "--layer", "--head", "--pair", "--last", "-o"):
        assert option in doc


def test_minilm_text_from_a_variable(attn_shell):
    attn_shell.user_ns["sentence"] = "The bank raised interest rates."
    attn_shell.run_cell("w = %attnviz sentence --view matrix --layer 5 --head 7 --top-k 4").raise_error()
    w = attn_shell.user_ns["w"]
    assert isinstance(w, AttentionWidget)
    assert w.tokens[0] == "[CLS]" and "bank" in w.tokens and w.tokens[-1] == "[SEP]"
    assert (w.view, w.layer, w.heads, w.top_k, w.n_layers, w.n_heads, w.causal) == ("matrix", 5, [7], 4, 6, 12, False)
    att = w.data.attention
    assert att.shape == (6, 12, len(w.tokens), len(w.tokens)) and np.allclose(att.sum(-1), 1, atol=1e-4)
    # the model's own q/k reproduce its pattern: softmax(q·kᵀ/√d) == captured
    q, k = w.data.q[2, 3], w.data.k[2, 3]
    s = q @ k.T / np.sqrt(q.shape[-1])
    p = np.exp(s - s.max(-1, keepdims=True))
    assert np.allclose(p / p.sum(-1, keepdims=True), att[2, 3], atol=1e-4)


def test_smollm2_is_causal(attn_shell, smollm2):
    attn_shell.run_cell("%attnviz 'Once upon a time' --model smollm2 -o w").raise_error()
    w = attn_shell.user_ns["w"]
    assert w.causal and w.model_name == "smollm2-135m-instruct" and w.n_layers == 30
    pattern = _codec.dequantise(w.attention, (len(w.attention_layers), w.n_heads, len(w.tokens), len(w.tokens)))
    assert np.triu(pattern[0, 0], 1).max() == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%attnviz 'The cat.' --model smollm2 --pair 'It sat.'", "--pair needs an encoder"),
        ("%attnviz", "Give %attnviz some text"),
        ("%attnviz 'x' --model no-such-model", "no-such-model"),
        ("%attnviz --last", "No %%ask answer"),
        ("%attnviz 'hello' --layer 99", "Layer 99 does not exist"),
    ],
)
def test_mistakes_are_one_line_usage_errors(attn_shell, smollm2, line, message):
    result = attn_shell.run_cell(line)
    assert isinstance(result.error_in_exec, IPythonUsageError), result.error_in_exec
    assert message in str(result.error_in_exec)


def test_last_without_captured_attention_says_how_to_get_it(attn_shell):
    from llm_magics.qa.answer import Answer, Source

    attn_shell.user_ns["a"] = Answer("q?", "an answer", [Source(1, "x.md", "text", 0.9)], [])
    attn_shell.run_cell("a").raise_error()
    result = attn_shell.run_cell("%attnviz --last")
    assert isinstance(result.error_in_exec, IPythonUsageError) and "no captured attention" in str(result.error_in_exec)
