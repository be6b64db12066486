"""The default embedder's dtype="auto": bfloat16 on CPUs with bf16 units, float32 elsewhere, the same neighbours."""

import numpy as np
import pytest

from llm_magics.ingest.embedders import get_embedder
from llm_magics.models import cache, resolve
from llm_magics.runtime.quantize import native_bf16
from llm_magics.testing import assert_same_embeddings

PASSAGES = [
    "Glaciers carve U-shaped valleys as they move slowly downhill under their own weight.",
    "To undo the last commit but keep its changes, run git reset --soft HEAD~1.",
    "R is a language and environment for statistical computing and graphics.",
    "sqlite3_prepare_v2() compiles an SQL statement into a byte-code program.",
    "The laser safety training is given by the lab's safety officer every spring.",
]
QUESTIONS = ["How do glaciers shape valleys?", "How do I undo a commit in git?", "What is R used for?",
             "Which function compiles a statement in SQLite?", "Who gives the laser training?"]


def test_auto_is_bf16_where_the_cpu_has_it_and_finds_the_same_neighbours_as_float32(minilm):
    assert minilm.options.dtype == "auto"
    vectors = minilm.embed(PASSAGES)
    want = "bfloat16" if native_bf16() else "float32"
    assert (str(resolve("all-minilm-l6-v2").path), want) in cache.loaded()

    exact = get_embedder("all-minilm-l6-v2", dtype="float32")
    reference = exact.embed(PASSAGES)
    assert_same_embeddings(vectors, reference, min_cosine=0.9999)
    # each question's nearest passage is its own, under both dtypes
    for emb in (minilm, exact):
        scores = emb.embed(QUESTIONS) @ emb.embed(PASSAGES).T
        assert list(scores.argmax(1)) == list(range(len(QUESTIONS)))
    # float32 does not depend on the batch; a text's vector alone equals its vector in a batch
    np.testing.assert_allclose(exact.embed(PASSAGES[:1])[0], reference[0], atol=1e-6)


def test_a_wrong_dtype_names_the_choices():
    from llm_magics import UsageError

    with pytest.raises(UsageError, match="auto"):
        get_embedder("all-minilm-l6-v2", dtype="float16")
