"""Training-example formats: Alpaca, ShareGPT, OpenAI chat, prompt/completion (and question/answer).

Every row becomes one `Example`: a list of chat messages (`{"role", "content"}`, roles
system / user / assistant), plus where it came from. Rows are validated as they are read:
a bad row raises `UsageError("line 3: field 'output' is missing ...")`, so nothing is
dropped silently and nothing reaches training.

    Alpaca             {"instruction": ..., "input": ... (optional), "output": ...}
    ShareGPT           {"conversations": [{"from": "human" | "gpt" | "system", "value": ...}, ...]}
    OpenAI chat        {"messages": [{"role": "user" | "assistant" | "system", "content": ...}, ...]}
    prompt/completion  {"prompt": ..., "completion": ...}
    question/answer    {"question": ..., "answer": ...}

`render()` turns an Example into token ids through the model's own chat template, with
labels masked (-100) everywhere except the assistant's tokens: the loss is only on what
the model should learn to say.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UsageError

FORMATS = ("alpaca", "sharegpt", "openai", "prompt_completion", "qa")
IGNORE = -100  # label of a position the loss skips (PyTorch's cross_entropy ignore_index)

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "system": "system", "model": "assistant"}  # fmt: skip
_KEYS = {  # the keys that identify each format, in the order they are tried
    "openai": ("messages",),
    "sharegpt": ("conversations",),
    "alpaca": ("instruction", "output"),
    "prompt_completion": ("prompt", "completion"),
    "qa": ("question", "answer"),
}


@dataclass
class Example:
    """One training conversation and its origin (file and line, or a collection chunk)."""

    messages: list[dict]
    source: dict = field(default_factory=dict)
    augmented: str = ""  # "" for an original row; else the augmentation that made it

    @property
    def prompt_messages(self) -> list[dict]:
        """Everything before the last assistant turn (what the model is given)."""
        last = max(i for i, m in enumerate(self.messages) if m["role"] == "assistant")
        return self.messages[:last]

    @property
    def answer(self) -> str:
        """The last assistant turn (what the model should say)."""
        return [m for m in self.messages if m["role"] == "assistant"][-1]["content"]

    @property
    def content_text(self) -> str:
        """The user and assistant turns joined (no system prompt), for near-duplicate detection."""
        return "\n".join(m["content"] for m in self.messages if m["role"] != "system")

    @property
    def text(self) -> str:
        """All turns joined, for deduplication and statistics."""
        return "\n".join(m["content"] for m in self.messages)


def detect(row: dict) -> str | None:
    """The format a row is in, from its keys (None when no format fits)."""
    for name, keys in _KEYS.items():
        if all(k in row for k in keys):
            return name
    return None


def _partial(row: dict) -> str | None:
    """The format a row half-matches (some of its keys present), so the error can name the missing field."""
    for name, keys in _KEYS.items():
        if any(k in row for k in keys) or (name == "alpaca" and "input" in row):
            return name
    return None


def _text(row: dict, key: str, where: str, fmt: str, optional: bool = False) -> str:
    if key not in row or row[key] is None:
        if optional:
            return ""
        raise UsageError(f"{where}: field {key!r} is missing ({fmt} rows need {', '.join(_KEYS[fmt])}).")
    value = row[key]
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise UsageError(f"{where}: field {key!r} must be text, not {type(value).__name__}.")
    return value


def _turns(items, where: str, key: str, role_key: str, text_key: str, roles: dict) -> list[dict]:
    if not isinstance(items, list) or not items:
        raise UsageError(f"{where}: field {key!r} must be a non-empty list of turns.")
    out = []
    for i, turn in enumerate(items):
        if not isinstance(turn, dict) or role_key not in turn or text_key not in turn:
            raise UsageError(f"{where}: {key}[{i}] needs {role_key!r} and {text_key!r}.")
        role = roles.get(str(turn[role_key]).lower())
        if role is None:
            raise UsageError(f"{where}: {key}[{i}].{role_key} is {turn[role_key]!r}; use one of {', '.join(sorted(set(roles)))}.")
        if not isinstance(turn[text_key], str):
            raise UsageError(f"{where}: {key}[{i}].{text_key} must be text.")
        out.append({"role": role, "content": turn[text_key]})
    return out


def to_messages(row, where: str = "row", fmt: str | None = None) -> list[dict]:
    """One row in any known format -> chat messages. `where` names the row in errors ("line 3")."""
    if not isinstance(row, dict):
        raise UsageError(f"{where}: expected an object with fields, got {type(row).__name__}.")
    fmt = fmt or detect(row) or _partial(row)
    if fmt is None:
        keys = ", ".join(repr(k) for k in list(row)[:6]) or "no fields"
        raise UsageError(
            f"{where}: unknown example format ({keys}). Use one of: "
            "instruction/input/output (Alpaca), conversations (ShareGPT), messages (OpenAI chat), "
            "prompt/completion, question/answer."
        )
    if fmt not in _KEYS:
        raise UsageError(f"Unknown format {fmt!r}. Known: {', '.join(FORMATS)}.")
    if fmt == "openai":
        roles = {"user": "user", "assistant": "assistant", "system": "system"}
        messages = _turns(row.get("messages"), where, "messages", "role", "content", roles)
    elif fmt == "sharegpt":
        messages = _turns(row.get("conversations"), where, "conversations", "from", "value", _SHAREGPT_ROLES)
    elif fmt == "alpaca":
        instruction, extra = _text(row, "instruction", where, fmt), _text(row, "input", where, fmt, optional=True)
        user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": _text(row, "output", where, fmt)}]
    elif fmt == "prompt_completion":
        messages = [{"role": "user", "content": _text(row, "prompt", where, fmt)},
                    {"role": "assistant", "content": _text(row, "completion", where, fmt)}]  # fmt: skip
    else:
        messages = [{"role": "user", "content": _text(row, "question", where, fmt)},
                    {"role": "assistant", "content": _text(row, "answer", where, fmt)}]  # fmt: skip
    if not any(m["role"] == "assistant" for m in messages):
        raise UsageError(f"{where}: no assistant turn, so there is nothing to learn from this row.")
    return messages


def from_messages(messages: list[dict], fmt: str) -> dict:
    """Chat messages -> one row in `fmt` (the inverse of to_messages, for single-turn rows)."""
    if fmt == "openai":
        return {"messages": [dict(m) for m in messages]}
    if fmt == "sharegpt":
        back = {"user": "human", "assistant": "gpt", "system": "system"}
        return {"conversations": [{"from": back[m["role"]], "value": m["content"]} for m in messages]}
    users = [m["content"] for m in messages if m["role"] == "user"]
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    if len(users) != 1 or len(answers) != 1:
        raise UsageError(f"Only single-turn examples convert to {fmt}; this one has {len(users)} user turns. Use openai or sharegpt.")
    keys = {"alpaca": ("instruction", "output"), "prompt_completion": ("prompt", "completion"), "qa": ("question", "answer")}
    if fmt not in keys:
        raise UsageError(f"Unknown format {fmt!r}. Known: {', '.join(FORMATS)}.")
    row = {keys[fmt][0]: users[0], keys[fmt][1]: answers[0]}
    if fmt == "alpaca":
        row["input"] = ""
    return row


def convert(rows, to: str, source_format: str | None = None) -> list[dict]:
    """Convert rows between formats, validating each (errors name the row: "row 3: ...")."""
    return [from_messages(to_messages(r, f"row {i}", source_format), to) for i, r in enumerate(rows, 1)]


def render(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """(input_ids, labels) through the tokenizer's chat template; labels are IGNORE outside assistant turns.

    The conversation is tokenized segment by segment at each assistant turn's start, so the
    prompt part is tokenized exactly as it is at generation time (ending in the template's
    generation prompt, e.g. "<|im_start|>assistant\\n") and the mask lines up token for token.
    """
    ids: list[int] = []
    labels: list[int] = []
    rendered = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = tokenizer.apply_chat_template(messages[:i], add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages[: i + 1], add_generation_prompt=False)
        if not prompt.startswith(rendered) or not full.startswith(prompt):
            raise UsageError("This chat template does not render conversations incrementally; use single-turn examples.")
        new_prompt = tokenizer.encode(prompt[len(rendered) :], add_special_tokens=not ids)
        reply = tokenizer.encode(full[len(prompt) :], add_special_tokens=False)
        ids += new_prompt + reply
        labels += [IGNORE] * len(new_prompt) + reply
        rendered = full
    return ids, labels
