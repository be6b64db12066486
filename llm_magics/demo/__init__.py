"""The offline demo: ingest the bundled documents and answer questions about them.

    python -m llm_magics.demo ["your question" ...]

Everything runs on this machine: all-MiniLM-L6-v2 embeds, Chroma stores, and
SmolLM2-135M-Instruct answers, with citations to the source files.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parent / "data"

QUESTIONS = (
    "Who gives out access badges, and where?",
    "How many nodes does the Heron GPU cluster have?",
    "Who gives the laser safety training?",
)
