"""The ``openai`` backend: chat completions from any OpenAI-compatible HTTP server.

Pick a model with ``--model openai:MODEL`` (``openai`` alone uses the server's first
model). Connection settings are described in ``openai_compat/__init__.py``; timeouts,
retries and errors live in ``client.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Iterator, Sequence

from pydantic import Field

from ..errors import UsageError
from ..backends.base import Backend, Completion, GenerationParams, Message, Usage
from .client import Connection, ConnectionOptions, OpenAIError, server_root, sse_events, tokenizer_for

if TYPE_CHECKING:
    import numpy as np

__all__ = ["OpenAIBackend", "OpenAIError"]

DEFAULT_CONTEXT_WINDOW = 4096


def _settings():
    from .settings import current

    return current()


# ---------------------------------------------------------------------------
# Chat completions
# ---------------------------------------------------------------------------


class OpenAIBackend(Backend):
    """Chat completions from an OpenAI-compatible server (OpenAI, llama.cpp, vLLM, Ollama, ...)."""

    name: ClassVar[str] = "openai"
    description: ClassVar[str] = "Any OpenAI-compatible HTTP server: --model openai:MODEL"

    class Options(ConnectionOptions):
        context_window: int | None = Field(None, gt=0, description="Prompt plus completion tokens the model takes; default: asked from the server, else 4096.")
        include_usage: bool = Field(True, description="Ask for token usage in the stream (stream_options.include_usage).")

    def __init__(self, model: str | None = None, **options):
        super().__init__(model, **options)
        self.connection = Connection.from_options(self.options)
        self._context_window: int | None = None

    def __repr__(self) -> str:
        return f"<OpenAIBackend model={self.model!r} base_url={self.connection.display_url!r}>"

    # -- the model ---------------------------------------------------------

    def resolved_model(self) -> str:
        """The model id to send; without one, the server's first model."""
        if not self.model:
            available = self.connection.models()
            if not available:
                raise UsageError(f"No model named and {self.connection.display_url} lists none. Use --model openai:MODEL_NAME.")
            self.model = available[0]
        return self.model

    @property
    def context_window(self) -> int:
        if self.options.context_window:
            return self.options.context_window
        configured = _settings().context_window
        if configured:
            return int(configured)
        if self._context_window is None:
            self._context_window = self._probe_context_window() or DEFAULT_CONTEXT_WINDOW
        return self._context_window

    def _probe_context_window(self) -> int | None:
        """Ask the server: vLLM and others list it under /models, llama.cpp under /props."""
        conn = Connection(self.connection.base_url, self.connection.api_key, min(self.connection.timeout, 5.0), 0)
        try:
            with conn.request("GET", "/models") as response:
                for entry in response.json().get("data", []):
                    if entry.get("id") == self.model:
                        meta = entry.get("meta") or {}
                        for key in ("max_model_len", "context_length", "context_window", "n_ctx"):
                            if isinstance(entry.get(key) or meta.get(key), int):
                                return entry.get(key) or meta.get(key)
            conn.base_url = server_root(conn.base_url)
            with conn.request("GET", "/props") as response:
                n_ctx = response.json().get("default_generation_settings", {}).get("n_ctx")
                return n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None
        except (OpenAIError, ValueError, AttributeError):
            return None
        finally:
            conn.close()

    def count_tokens(self, text: str) -> int:
        """The server's tokenizer when it has one (llama.cpp, llama-cpp-python), else ~4 chars a token."""
        counted = tokenizer_for(self.connection).count(text, self.model)
        return counted if counted is not None else super().count_tokens(text)

    # -- generation --------------------------------------------------------

    def _body(self, messages: list[Message], params: GenerationParams, stream: bool) -> dict:
        body: dict = {"model": self.resolved_model(), "messages": list(messages), "temperature": params.temperature, "max_tokens": params.max_tokens, "stream": stream}
        if params.stop:
            body["stop"] = list(params.stop)
        for key in ("top_p", "top_k", "seed"):
            if getattr(params, key) is not None:
                body[key] = getattr(params, key)
        if stream and self.options.include_usage:
            body["stream_options"] = {"include_usage": True}
        return body

    def stream(self, messages: list[Message], params: GenerationParams, usage: Usage) -> Iterator[str]:
        body = self._body(messages, params, stream=True)
        pieces: list[str] = []
        usage.extra["usage"] = "counted"
        try:
            try:
                yield from self._events(body, pieces, usage)
            except OpenAIError as e:
                if pieces or e.status not in (400, 422) or "stream_options" not in str(e) or "stream_options" not in body:
                    raise
                # An older server that rejects stream_options: ask again without it, and count.
                del body["stream_options"]
                yield from self._events(body, pieces, usage)
        except KeyboardInterrupt:
            usage.finish_reason = "interrupted"
            raise
        except GeneratorExit:
            # The caller stopped reading (an interrupt in its loop, or a break).
            if usage.finish_reason is None:
                usage.finish_reason = "interrupted"
            raise
        except OpenAIError:
            usage.finish_reason = "error"
            raise
        finally:
            if usage.extra["usage"] == "counted":
                # One streamed piece is one token on llama.cpp, vLLM and OpenAI.
                usage.completion_tokens = len(pieces)
                ended = usage.finish_reason not in (None, "interrupted", "error")
                usage.prompt_tokens = usage.prompt_tokens or self._count_prompt(messages, exact=ended)

    def _events(self, body: dict, pieces: list[str], usage: Usage) -> Iterator[str]:
        with self.connection.request("POST", "/chat/completions", body, stream=True) as response:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                # A server that ignores "stream": the whole reply as one JSON body.
                response.read()
                text = self._fill_usage(response.json(), usage)
                if usage.extra["usage"] == "counted":
                    usage.extra["usage"] = "counted whole"
                    usage.prompt_tokens = self._count_prompt(body["messages"])
                pieces.append(text)
                yield text
                return
            for event in sse_events(response, self.connection):
                if event.get("usage"):
                    _server_usage(event["usage"], usage)
                for choice in event.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content") or ""
                    if choice.get("finish_reason"):
                        usage.finish_reason = choice["finish_reason"]
                    if piece:
                        pieces.append(piece)
                        yield piece

    def complete(self, messages: list[Message] | str, params: GenerationParams | None = None) -> Completion:
        """The whole reply in one non-streaming request."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        usage = Usage()
        try:
            data = self.connection.post_json("/chat/completions", self._body(messages, params or GenerationParams(), stream=False))
        except KeyboardInterrupt:
            usage.finish_reason = "interrupted"
            raise
        text = self._fill_usage(data, usage)
        if usage.extra["usage"] == "counted":
            usage.prompt_tokens = self._count_prompt(messages)
        return Completion(text, usage)

    def _fill_usage(self, data: dict, usage: Usage) -> str:
        choices = data.get("choices") or [{}]
        message = choices[0].get("message") or {}
        text = message.get("content") or ""
        usage.finish_reason = choices[0].get("finish_reason")
        if data.get("usage"):
            _server_usage(data["usage"], usage)
        else:
            usage.extra["usage"] = "counted"
            usage.completion_tokens = self.count_tokens(text) if text else 0
        return text

    def _count_prompt(self, messages: list[Message], exact: bool = True) -> int:
        # Content tokens plus about what a chat template adds: a few role-marker tokens a message.
        count = self.count_tokens if exact else super().count_tokens  # no server calls while interrupted
        return sum(count(str(m.get("content", ""))) + 4 for m in messages)

    def close(self) -> None:
        self.connection.close()


def _server_usage(data: dict, usage: Usage) -> None:
    usage.prompt_tokens = int(data.get("prompt_tokens") or 0)
    usage.completion_tokens = int(data.get("completion_tokens") or 0)
    usage.extra["usage"] = "server"
