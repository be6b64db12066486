"""Reading, validating, converting, cleaning, splitting and augmenting examples."""

from __future__ import annotations

import json

import pytest

from llm_magics.errors import UsageError
from llm_magics.finetune import data, formats
from llm_magics.finetune.augment import augment_examples

from .conftest import country_rows


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_each_format_reads_to_the_same_messages():
    rows = {
        "alpaca": {"instruction": "Capital of France?", "input": "", "output": "Paris"},
        "sharegpt": {"conversations": [{"from": "human", "value": "Capital of France?"}, {"from": "gpt", "value": "Paris"}]},
        "openai": {"messages": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris"}]},
        "prompt_completion": {"prompt": "Capital of France?", "completion": "Paris"},
        "qa": {"question": "Capital of France?", "answer": "Paris"},
    }
    expected = [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris"}]
    for fmt, row in rows.items():
        assert formats.detect(row) == fmt
        assert formats.to_messages(row) == expected
        for target in rows:  # every format converts to every other and back
            assert formats.to_messages(formats.convert([row], to=target)[0]) == expected


def test_alpaca_input_joins_the_instruction():
    messages = formats.to_messages({"instruction": "Translate", "input": "chat", "output": "cat"})
    assert messages[0]["content"] == "Translate\n\nchat"


def test_malformed_jsonl_line_names_the_line(tmp_path):
    path = write(tmp_path, "bad.jsonl", '{"question": "a", "answer": "b"}\n{"question": "c", "answer": "d"}\n{"question": "e", "answer": \n')
    with pytest.raises(UsageError, match=r"^line 3: not valid JSON"):
        data.read(path)


def test_missing_field_names_the_line_and_the_field(tmp_path):
    path = write(tmp_path, "bad.jsonl", '{"instruction": "a", "output": "b"}\n\n{"instruction": "c"}\n')
    with pytest.raises(UsageError, match=r"^line 3: .*'output'"):
        data.read(path)  # the blank line 2 is skipped, the numbering still counts it


def test_bad_turn_role_and_unknown_format(tmp_path):
    path = write(tmp_path, "bad.jsonl", json.dumps({"messages": [{"role": "robot", "content": "x"}]}) + "\n")
    with pytest.raises(UsageError, match=r"^line 1: messages\[0\]\.role is 'robot'"):
        data.read(path)
    with pytest.raises(UsageError, match=r"^item 0: unknown example format"):
        data.read([{"text": "no format"}])


def test_csv_and_dataframe(tmp_path):
    import pandas as pd

    path = write(tmp_path, "qa.csv", "question,answer\nWhat is 2+2?,4\nWhat is 3+3?,6\n")
    assert [e.answer for e in data.read(path)] == ["4", "6"]
    df = pd.DataFrame([{"prompt": "p1", "completion": "c1"}, {"prompt": "p2", "completion": "c2"}])
    assert [e.messages[0]["content"] for e in data.read(df)] == ["p1", "p2"]
    bad = write(tmp_path, "bad.csv", "question,answer\nfine,yes\nmissing,\n")
    with pytest.raises(UsageError, match=r"^line 3: field 'answer' is missing"):
        data.read(bad)


def test_empty_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match="empty"):
        data.prepare(write(tmp_path, "empty.jsonl", "\n"))


def test_cleaning_counts_empty_exact_and_near_duplicates():
    rows = [{"question": "What is the capital city of France?", "answer": "Paris"},
            {"question": "What is the capital city of France?", "answer": "Paris"},   # exact
            {"question": "what is the capital city of France", "answer": "Paris."},  # near
            {"question": "   ", "answer": "x"},                                        # empty
            {"question": "Name the largest planet.", "answer": "Jupiter"}]  # fmt: skip
    kept, dropped = data.clean(data.read(rows))
    assert [e.answer for e in kept] == ["Paris", "Jupiter"]
    assert sorted(reason for _, reason in dropped) == ["empty", "exact duplicate", "near duplicate"]


def test_split_is_reproducible_and_order_independent():
    examples = data.read(country_rows(40))
    train1, val1 = data.split(examples, 0.25, seed=3)
    train2, val2 = data.split(list(reversed(examples)), 0.25, seed=3)
    assert [e.answer for e in val1] == [e.answer for e in val2] and len(val1) == 10 and len(train1) == 30
    _, val3 = data.split(examples, 0.25, seed=4)
    assert [e.answer for e in val3] != [e.answer for e in val1]


def test_augmentation_is_counted_and_stays_out_of_validation():
    ds = data.prepare(country_rows(30), val_fraction=0.2, augment={"paraphrase": 1, "noise": 1})
    assert ds.report.augmented == {"paraphrase": 24, "noise": 24}
    assert len(ds.train) == 24 * 3 and all(not e.augmented for e in ds.validation)
    val_answers = {e.answer for e in ds.validation}
    assert not any(e.answer in val_answers for e in ds.train)  # no copy of a held-out example
    with pytest.raises(UsageError, match="Unknown augmentation"):
        augment_examples(ds.train, {"shuffle": 1})


def test_render_masks_everything_but_the_assistant(smollm2):
    tok = smollm2.tokenizer
    messages = country_rows(1)[0]["messages"]
    ids, labels = formats.render(tok, messages)
    trained = tok.decode([i for i, y in zip(ids, labels) if y != formats.IGNORE])
    assert trained.startswith(messages[-1]["content"]) and "<|im_end|>" in trained
    prompt = tok.apply_chat_template(messages[:-1], add_generation_prompt=True)
    assert ids[: labels.index(next(y for y in labels if y != formats.IGNORE))] == tok.encode(prompt)


def test_report_has_token_stats_and_a_rendered_example(smollm2, tmp_path):
    rows = country_rows(12) + [{"question": "long " * 400, "answer": "x"}]
    ds = data.prepare(rows, tokenizer=smollm2.tokenizer, max_tokens=64)
    assert ds.report.dropped == {"over-long": 1}
    assert ds.report.token_stats["max"] <= 64 and "[[" in ds.report.masked_example
    assert "1 over-long" in str(ds.report)
    with pytest.raises(UsageError, match="No examples left after cleaning"):
        data.prepare([{"question": "long " * 400, "answer": "x"}], tokenizer=smollm2.tokenizer, max_tokens=64)
