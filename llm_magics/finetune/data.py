"""Data preparation: read examples, clean them, split them, and say what happened.

    read(source)            JSONL / JSON / CSV file, a pandas DataFrame, or a list of rows
    clean(examples, ...)    drop empty, over-long, exact and near duplicates, each with its reason
    split(examples, ...)    a reproducible train / validation split from a seed
    prepare(source, ...)    all of it, plus augmentation of the training split and a DataReport

Reading validates every row first (formats.to_messages), so a bad row stops everything
with `line 3: ...` before a model is even loaded. Cleaning never stops: it counts what it
drops, with the reason, in the report.
"""

from __future__ import annotations

import csv
import json
import random
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from .formats import Example, render, to_messages


# ─── reading ──────────────────────────────────────────────────────────────────


def read(source, fmt: str | None = None) -> list[Example]:
    """Examples from a path (.jsonl, .json, .csv), a DataFrame, a list of rows, or Examples.

    fmt: force a format ("alpaca", "sharegpt", "openai", "prompt_completion", "qa");
    by default each row's keys decide. Raises UsageError naming the line and field of a bad row.
    """
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise UsageError(f"No data file {str(path)!r}. Pass a .jsonl, .json or .csv file.")
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            rows = _jsonl_rows(path)
        elif suffix == ".json":
            rows = _json_rows(path)
        elif suffix in (".csv", ".tsv"):
            rows = _csv_rows(path, "\t" if suffix == ".tsv" else ",")
        else:
            raise UsageError(f"{path.name}: unknown data file type {suffix!r}. Use .jsonl, .json or .csv.")
        origin = str(path)
    elif hasattr(source, "to_dict") and hasattr(source, "columns"):  # a pandas DataFrame
        rows = [(f"row {i}", _drop_nan(r)) for i, r in enumerate(source.to_dict("records"))]
        origin = "dataframe"
    elif isinstance(source, (list, tuple)):
        if all(isinstance(r, Example) for r in source):
            return list(source)
        rows = [(f"item {i}", r) for i, r in enumerate(source)]
        origin = "list"
    else:
        raise UsageError(f"Cannot read examples from {type(source).__name__}. Pass a file path, a DataFrame or a list of dicts.")
    examples = []
    for where, row in rows:
        messages = to_messages(row, where, fmt)
        examples.append(Example(messages, {"source": origin, "where": where, **_row_source(row)}))
    return examples


def _row_source(row) -> dict:
    """Keep a row's own provenance (a `source` field), e.g. the chunk a QA pair came from."""
    return {"origin": row["source"]} if isinstance(row, dict) and isinstance(row.get("source"), (str, dict)) else {}


def _drop_nan(row: dict) -> dict:
    return {k: v for k, v in row.items() if not (isinstance(v, float) and v != v)}


def _jsonl_rows(path: Path) -> list[tuple[str, dict]]:
    rows = []
    with path.open(encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError as e:
                raise UsageError(f"line {number}: not valid JSON ({e.msg} at column {e.colno}) in {path.name}.") from None
    return rows


def _json_rows(path: Path) -> list[tuple[str, dict]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise UsageError(f"line {e.lineno}: not valid JSON ({e.msg}) in {path.name}.") from None
    if not isinstance(data, list):
        raise UsageError(f"{path.name}: expected a JSON list of examples (or use JSONL, one per line).")
    return [(f"item {i}", row) for i, row in enumerate(data)]


def _csv_rows(path: Path, delimiter: str) -> list[tuple[str, dict]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        return [(f"line {reader.line_num}", {k: v for k, v in row.items() if k is not None and v not in (None, "")})
                for row in reader]  # fmt: skip


# ─── cleaning and splitting ───────────────────────────────────────────────────


def _shingles(text: str, k: int = 5) -> set[str]:
    """Overlapping k-character pieces of the text, case, punctuation and spacing ignored."""
    t = " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
    return {t[i : i + k] for i in range(max(1, len(t) - k + 1))}


def clean(examples: list[Example], *, tokenizer=None, max_tokens: int | None = None,
          near_duplicates: float | None = 0.85) -> tuple[list[Example], list[tuple[Example, str]]]:  # fmt: skip
    """(kept, dropped with reasons). Drops: an empty turn, over max_tokens (with the tokenizer),
    exact duplicates, and near duplicates (MinHash Jaccard >= near_duplicates over 5-character shingles
    of the lower-cased text without punctuation).
    """
    kept: list[Example] = []
    dropped: list[tuple[Example, str]] = []
    seen: set[str] = set()
    lsh = None
    if near_duplicates:
        from datasketch import MinHash, MinHashLSH

        lsh = MinHashLSH(threshold=near_duplicates, num_perm=128)
    for i, ex in enumerate(examples):
        if any(not m["content"].strip() for m in ex.messages if m["role"] != "system"):
            dropped.append((ex, "empty"))
            continue
        key = json.dumps(ex.messages, sort_keys=True)
        if key in seen:
            dropped.append((ex, "exact duplicate"))
            continue
        if tokenizer is not None and max_tokens:
            n = len(render(tokenizer, ex.messages)[0])
            if n > max_tokens:
                dropped.append((ex, f"over-long ({n} tokens > {max_tokens})"))
                continue
        if lsh is not None:
            mh = MinHash(num_perm=128, seed=1)
            for s in _shingles(ex.content_text):  # a system prompt every row shares would inflate similarity
                mh.update(s.encode("utf-8"))
            if lsh.query(mh):
                dropped.append((ex, "near duplicate"))
                continue
            lsh.insert(str(i), mh)
        seen.add(key)
        kept.append(ex)
    return kept, dropped


def split(examples: list[Example], val_fraction: float = 0.1, seed: int = 0, min_val: int = 1) -> tuple[list[Example], list[Example]]:
    """(train, validation): the same seed gives the same split, whatever order the file is in
    (examples are ordered by content before shuffling)."""
    ordered = sorted(examples, key=lambda e: json.dumps(e.messages, sort_keys=True))
    random.Random(seed).shuffle(ordered)
    if len(ordered) < 2:
        return ordered, []
    n_val = min(len(ordered) - 1, max(min_val, round(len(ordered) * val_fraction))) if val_fraction > 0 else 0
    return ordered[n_val:], ordered[:n_val]


# ─── the report ───────────────────────────────────────────────────────────────


@dataclass
class DataReport:
    """What preparation did: counts, why rows were dropped, token lengths, one rendered example."""

    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    train: int = 0
    validation: int = 0
    augmented: Counter = field(default_factory=Counter)
    token_stats: dict = field(default_factory=dict)
    rendered_example: str = ""
    masked_example: str = ""

    def to_dict(self) -> dict:
        return {"read": self.read, "kept": self.kept, "dropped": dict(self.dropped), "train": self.train,
                "validation": self.validation, "augmented": dict(self.augmented), "token_stats": self.token_stats}  # fmt: skip

    def __str__(self) -> str:
        drops = ", ".join(f"{n} {why}" for why, n in self.dropped.items()) or "none"
        aug = ", ".join(f"{n} {kind}" for kind, n in self.augmented.items()) or "none"
        s = self.token_stats
        lines = [
            f"Examples: {self.read} read, {self.kept} kept (dropped: {drops}).",
            f"Split: {self.train} train, {self.validation} validation; augmented (train only): {aug}.",
        ]
        if s:
            lines.append(f"Tokens per example: min {s['min']}, median {s['median']}, mean {s['mean']:.1f}, "
                         f"p95 {s['p95']}, max {s['max']}; {s['total']} in train, {s['assistant_share']:.0%} on assistant turns.")  # fmt: skip
        if self.rendered_example:
            lines += ["Through the chat template (the loss is on the [[ ]] part):", self.masked_example]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```"


def token_stats(tokenizer, examples: list[Example]) -> dict:
    lengths, assistant = [], 0
    for ex in examples:
        ids, labels = render(tokenizer, ex.messages)
        lengths.append(len(ids))
        assistant += sum(1 for x in labels if x != -100)
    if not lengths:
        return {}
    ordered = sorted(lengths)
    return {"min": ordered[0], "median": int(statistics.median(ordered)), "mean": statistics.fmean(ordered),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1],
            "total": sum(ordered), "assistant_share": assistant / max(1, sum(ordered))}  # fmt: skip


def show_masked(tokenizer, messages: list[dict]) -> tuple[str, str]:
    """(the rendered text, the same text with the trained tokens in [[ ]])."""
    ids, labels = render(tokenizer, messages)
    out, inside = [], False
    for token, label in zip(ids, labels):
        trained = label != -100
        if trained != inside:
            out.append("[[" if trained else "]]")
            inside = trained
        out.append(tokenizer.decode([token]))
    if inside:
        out.append("]]")
    return tokenizer.decode(ids), "".join(out)


@dataclass
class Dataset:
    """Prepared data: the train and validation examples and the report."""

    train: list[Example]
    validation: list[Example]
    report: DataReport

    def __repr__(self) -> str:
        return f"<Dataset {len(self.train)} train, {len(self.validation)} validation>"


def prepare(source, *, tokenizer=None, max_tokens: int | None = None, fmt: str | None = None,
            val_fraction: float = 0.1, seed: int = 0, near_duplicates: float | None = 0.85,
            augment: dict | None = None, augment_model=None) -> Dataset:  # fmt: skip
    """Read, clean, split, augment the train split, and report. Raises UsageError when nothing is left."""
    examples = source if isinstance(source, Dataset) else read(source, fmt)
    if isinstance(examples, Dataset):
        return examples
    report = DataReport(read=len(examples))
    if not examples:
        raise UsageError("The dataset is empty: no examples to train on. Check the file, or pass at least a few rows.")
    kept, dropped = clean(examples, tokenizer=tokenizer, max_tokens=max_tokens, near_duplicates=near_duplicates)
    report.dropped = Counter(reason.split(" (")[0] for _, reason in dropped)
    report.kept = len(kept)
    if not kept:
        reasons = ", ".join(f"{n} {r}" for r, n in report.dropped.items())
        raise UsageError(f"No examples left after cleaning ({reasons}). Check the data, or raise --max-tokens.")
    train, val = split(kept, val_fraction, seed)
    if augment:
        from .augment import augment_examples

        extra, counts = augment_examples(train, augment, seed=seed, model=augment_model)
        train = train + extra
        report.augmented = counts
    report.train, report.validation = len(train), len(val)
    if tokenizer is not None:
        report.token_stats = token_stats(tokenizer, train)
        report.rendered_example, report.masked_example = show_masked(tokenizer, train[0].messages)
    return Dataset(train, val, report)
