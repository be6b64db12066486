"""Self-consistency: agreement between sampled answers."""

from __future__ import annotations

import pytest

from llm_magics.qa.samples import Consensus, agree


def test_answers_that_state_the_same_fact_agree():
    assert agree("The Heron cluster has 8 nodes [1].", "It has 8 nodes.")
    assert not agree("It has 8 nodes.", "It has 16 nodes.")
    assert agree("It has 8 nodes.", "It has 8 nodes, each with four GPUs of 80 GB.")  # one answer says more
    assert not agree("It has 8 nodes.", "Nobody knows how many nodes it has.")
    assert agree("Dr. Ines Okafor gives the training.", "The training is given by Dr Ines Okafor.")
    assert not agree("Dr. Ines Okafor gives the training.", "Nobody; the handbook does not say.")


def test_majority_and_agreement_figures():
    c = Consensus.of(["The cluster has 8 nodes [1].", "8 nodes.", "The Heron GPU cluster has 8 nodes.", "There are 16 nodes.", "I do not know."])
    assert c.majority == "The cluster has 8 nodes [1]."
    assert c.agreement == pytest.approx(0.6)
    assert c.pairwise == pytest.approx(3 / 10)
    assert c.groups == [[0, 1, 2], [3], [4]]
    assert c.summary().startswith("agreement 60% (3 of 5 samples")
    assert Consensus.of(["yes"] * 3).agreement == 1.0
