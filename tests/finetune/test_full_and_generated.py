"""Full fine-tuning, question/answer pairs a model writes from a collection, and back-generation:
each on the real SmolLM2 (and a real Chroma collection embedded by the real MiniLM)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from llm_magics import Index, finetune, models
from llm_magics.finetune import data
from llm_magics.finetune.augment import augment_examples

from .conftest import FAST, country_rows

pytestmark = pytest.mark.slow

PROMPT = "<|im_start|>user\nFrance<|im_end|>\n<|im_start|>assistant\n"


def test_full_fine_tuning_trains_every_weight_and_loads_back(codes_file, tmp_path):
    result = finetune.train(codes_file, "smollm2", method="full", steps=4, output_dir=tmp_path / "run",
                            val_fraction=0.15, **{**FAST, "learning_rate": 5e-5})  # fmt: skip
    assert result.method == "full" and result.trainable_parameters > 130_000_000  # every weight, not adapters
    assert len(result.losses) == 4 and result.losses[-1] < result.losses[0], result.losses
    assert result.after.loss < result.before.loss

    tuned = finetune.load_adapter("smollm2", result.adapter_path)  # the saved weights, on a fresh copy
    base = models.load("smollm2-135m-instruct", dtype="float32")
    ids = tuned.encode(PROMPT)
    assert not torch.allclose(tuned.logits(ids), base.logits(ids), atol=1e-3)  # the weights did change ...
    codes = tuned.encode("FRA")
    tuned_p = tuned.logits(ids)[-1].log_softmax(-1)[codes[0]]
    base_p = base.logits(ids)[-1].log_softmax(-1)[codes[0]]
    assert tuned_p > base_p  # ... towards the codes it was trained on


@pytest.fixture(scope="module")
def handbook(tmp_path_factory):
    folder = tmp_path_factory.mktemp("handbook")
    (folder / "lab.md").write_text(
        "# Kestrel Lab\n\nNew members receive their access badge from Marta Ruiz in room B214.\n\n"
        "## Computing\n\nHome folders on the Osprey file server are backed up every night at 02:00.\n\n"
        "## Safety\n\nDr. Ines Okafor gives the laser safety training on the first Monday of each month.\n"
    )  # fmt: skip
    index = Index(collection="finetune-qa", path=str(folder / "store"))
    index.add([str(folder / "lab.md")], progress=False, chunk_size=120, chunk_overlap=0)
    return index


def test_question_answer_pairs_from_a_collection_keep_their_source(handbook):
    records = {r["id"]: r for r in handbook.store.get()}
    assert len(records) >= 3
    skipped: Counter = Counter()
    rows = finetune.qa_pairs_from_collection(handbook, "smollm2", limit=3, skipped=skipped)
    assert len(rows) + sum(skipped.values()) == 3 and len(rows) >= 2, (rows, skipped)  # a pair, or a counted skip
    for row in rows:
        assert row["question"].endswith("?") and not row["question"].lower().startswith("q")
        assert row["answer"] and "\n" not in row["answer"]
        assert row["source"]["id"] in records and row["source"]["source"].endswith("lab.md")
    examples = data.read(rows)  # the rows train as they are (the qa format), and keep where they came from
    assert [e.source["origin"]["id"] for e in examples] == [r["source"]["id"] for r in rows]
    assert [e.answer for e in examples] == [r["answer"] for r in rows]


def test_back_generation_writes_new_questions_for_the_same_answers(smollm2):
    originals = data.read(country_rows(4))
    new, counts = augment_examples(originals, {"backgen": 1}, model=smollm2)
    assert counts["backgen"] == len(new) >= 2  # the model may repeat a question: that one is skipped
    by_answer = {e.answer: e for e in originals}
    for ex in new:
        assert ex.augmented == "backgen" and ex.answer in by_answer  # the answer is kept ...
        user = [m["content"] for m in ex.messages if m["role"] == "user"][-1]
        original = [m["content"] for m in by_answer[ex.answer].messages if m["role"] == "user"][-1]
        assert user and user != original  # ... the question is the model's own

    ds = data.prepare(country_rows(10), val_fraction=0.2, augment={"backgen": 1}, augment_model=smollm2)
    assert ds.report.augmented["backgen"] >= 4 and all(not e.augmented for e in ds.validation)
    held_out = {e.answer for e in ds.validation}
    assert not any(e.answer in held_out for e in ds.train)  # nothing generated from a validation example
