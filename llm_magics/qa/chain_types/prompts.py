"""Prompt templates, rendered by Jinja2 in a sandbox.

User text (a question, a document chunk) only ever enters a prompt as a *value* of a
template variable, so braces in it are inert; it is never ``str.format``ed. Templates a
user writes (``{{ var }}`` in a ``%%ask`` cell, a ``%chain`` prompt step) are rendered in
a ``SandboxedEnvironment`` with ``StrictUndefined``, so a typo is an error, not "".

The built-in prompts are written for small models (SmolLM2-135M): short, plain
instructions, the context first, the question last.
"""

from __future__ import annotations

import functools
from typing import Any

from ...errors import UsageError

SYSTEM = (
    "You answer questions using only the given context. "
    "Answer in one or two short sentences. "
    "If the context does not contain the answer, say: I don't know."
)

TEMPLATES: dict[str, str] = {
    # stuff, as LangChain's RetrievalQA lays it out for chat models: every chunk that fits, in
    # the system message; the question alone is the user's turn (the default, see Stuff).
    "stuff_system": (
        "Use the following numbered passages to answer the user's question in one short sentence, "
        "and cite the passage like [1]. If you don't know the answer, just say that you don't know, "
        "don't try to make up an answer.\n----------------\n"
        "{% for c in chunks %}[{{ c.number }}] {{ c.text }}\n\n{% endfor %}"
    ),
    "stuff_question": "{{ question }}{% if instructions %}\n{{ instructions }}{% endif %}",
    # stuff with the context in the user's turn (Stuff's context="user"): one prompt, every chunk that fits.
    "stuff": (
        "Context:\n{% for c in chunks %}[{{ c.number }}] {{ c.text }}\n\n{% endfor %}"
        "Question: {{ question }}\n"
        "Answer the question using the context."
        "{% if instructions %}\n{{ instructions }}{% endif %}"
    ),
    # refine: a first answer from one chunk ...
    "refine_initial": (
        "Context:\n[{{ chunk.number }}] {{ chunk.text }}\n\n"
        "Question: {{ question }}\n"
        "Answer the question using the context."
        "{% if instructions %}\n{{ instructions }}{% endif %}"
    ),
    # ... then improved with each further chunk.
    "refine": (
        "Question: {{ question }}\n"
        "Current answer: {{ answer }}\n\n"
        "More context:\n[{{ chunk.number }}] {{ chunk.text }}\n\n"
        "Improve the current answer using the new context. "
        "If the new context does not help, repeat the current answer."
        "{% if instructions %}\n{{ instructions }}{% endif %}"
    ),
    # map_reduce: the relevant part of each chunk ...
    "map": (
        "Context:\n{{ chunk.text }}\n\n"
        "Question: {{ question }}\n"
        "Copy the sentences from the context that help answer the question. "
        "If nothing helps, write NONE."
    ),
    # ... condensed when the extracts are too long together ...
    "collapse": (
        "Notes:\n{% for n in notes %}{{ n.label }} {{ n.text }}\n{% endfor %}\n"
        "Question: {{ question }}\n"
        "Shorten these notes, keeping only what helps answer the question."
    ),
    # ... then combined into one answer.
    "reduce": (
        "Notes:\n{% for n in notes %}{{ n.label }} {{ n.text }}\n{% endfor %}\n"
        "Question: {{ question }}\n"
        "Answer the question using the notes."
        "{% if instructions %}\n{{ instructions }}{% endif %}"
    ),
    # map_rerank: an answer and a confidence score per chunk.
    "rerank": (
        "Context:\n{{ chunk.text }}\n\n"
        "Question: {{ question }}\n"
        "Answer the question using the context."
        "{% if instructions %}\n{{ instructions }}{% endif %}\n"
        "Then write a new line 'Score: N', where N from 0 to 100 says how well the context answers the question."
    ),
    # summary memory: fold old turns into a running summary.
    "summarize": (
        "{% if summary %}Summary so far: {{ summary }}\n\n{% endif %}"
        "New lines of conversation:\n{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}\n"
        "Write a short summary of the whole conversation."
    ),
    # a bad structured reply, sent back once more.
    "retry": "That reply was not valid: {{ error }}\n{{ instructions }}",
}


@functools.lru_cache(maxsize=1)
def environment():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False, trim_blocks=False)


@functools.lru_cache(maxsize=256)
def _compile(source: str):
    return environment().from_string(source)


def render_string(source: str, variables: dict[str, Any] | None = None, *, what: str = "template") -> str:
    """Render a user-written Jinja2 template; mistakes become a UsageError naming the fix."""
    from jinja2 import TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError

    try:
        return _compile(source).render(**(variables or {}))
    except UndefinedError as e:
        raise UsageError(f"Undefined variable in the {what}: {e.message}. Define it first, or pass --no-interpolate to send the text as written.") from None
    except TemplateSyntaxError as e:
        raise UsageError(f"Bad {{{{ }}}} syntax in the {what} (line {e.lineno}): {e.message}. Fix it, or pass --no-interpolate.") from None
    except SecurityError as e:
        raise UsageError(f"The {what} tried something the sandbox forbids: {e}.") from None


def render(name: str, **variables: Any) -> str:
    """Render a built-in template by name (see ``TEMPLATES``)."""
    return _compile(TEMPLATES[name]).render(**variables)
