"""%finetune in a real IPython shell."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError as IPythonUsageError


def test_help_and_bad_rows_are_one_line(ip, tmp_path):
    doc = ip.find_line_magic("finetune").__doc__  # what %finetune? prints
    for option in ("--data", "--model", "--method", "--steps", "--tracker", "--tracking-uri", "--name"):
        assert option in doc
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a"\n')
    with pytest.raises(IPythonUsageError, match=r"^line 2: not valid JSON"):
        ip.run_cell(f"%finetune --data {bad} --steps 2").raise_error()
    with pytest.raises(IPythonUsageError, match="Name the training data"):
        ip.run_cell("%finetune --steps 2").raise_error()


@pytest.mark.slow
def test_finetune_magic_trains_from_a_notebook_list(ip, capsys):
    from .conftest import country_rows

    ip.user_ns["rows"] = country_rows(16)
    result = ip.run_cell("%finetune --data rows --steps 2 --val-fraction 0.2 --output-dir run --option batch_size=4 "
                         "--option eval_examples=1 --option max_new_tokens=4 -o r")  # fmt: skip
    result.raise_error()
    out = capsys.readouterr()
    assert "loss " in out.out + out.err and "exact match" in out.out
    assert ip.user_ns["r"].steps == 2 and len(ip.user_ns["r"].losses) == 2
