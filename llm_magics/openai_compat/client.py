"""Talking to an OpenAI-compatible server: URL and key, retries, errors, SSE, its tokenizer.

The ``openai`` backend and embedder (``openai_compat/backend.py`` and ``embedder.py``) share this. A ``Connection``
sends one request with retries: failed connections, timeouts, 429 and 5xx answers are
tried again with exponential backoff, and a ``Retry-After`` header wins over the backoff.
What still fails becomes an ``OpenAIError``, a one-line ``UsageError`` that says the fix.
The API key goes into the ``Authorization`` header and nowhere else: reprs, logs and
error messages never show it, even when a server echoes it back.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from pydantic import Field, SecretStr

from ..errors import UsageError
from ..extension import Options

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("llm_magics.openai_compat")

OPENAI_URL = "https://api.openai.com/v1"
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
SET_URL = "%config OpenAICompat.base_url = 'http://127.0.0.1:8000/v1' (or $OPENAI_BASE_URL)"
SET_KEY = "%config OpenAICompat.api_key = '...' (or $OPENAI_API_KEY)"


class OpenAIError(UsageError):
    """A request the server refused or never answered; ``status`` is the HTTP status (0: none)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------
# The connection: base URL, key, timeouts and retries shared by backend and embedder
# ---------------------------------------------------------------------------


class ConnectionOptions(Options):
    base_url: str | None = Field(None, description="Server URL ending in /v1; default: OpenAICompat.base_url, then $OPENAI_BASE_URL.")
    api_key: SecretStr | None = Field(None, description="API key; default: OpenAICompat.api_key, then $OPENAI_API_KEY. Never shown.")
    timeout: float | None = Field(None, gt=0, description="Seconds to wait for the server; default: OpenAICompat.timeout.")
    max_retries: int = Field(3, ge=0, description="Retries after a failed connection, a timeout, 429 or 5xx.")
    backoff: float = Field(0.5, ge=0, description="First retry delay in seconds; it doubles on each retry.")
    max_wait: float = Field(30.0, ge=0, description="Longest single wait between retries, Retry-After included.")


@dataclass
class Connection:
    """Where the server is and how to talk to it. ``repr`` never shows the key."""

    base_url: str
    api_key: str = field(default="", repr=False)
    timeout: float = 60.0
    max_retries: int = 3
    backoff: float = 0.5
    max_wait: float = 30.0
    _client: "httpx.Client | None" = field(default=None, repr=False, compare=False)

    @classmethod
    def from_options(cls, options: ConnectionOptions) -> "Connection":
        from .settings import current

        s = current()
        key = options.api_key.get_secret_value() if options.api_key else ""
        key = key or s.api_key or os.environ.get("OPENAI_API_KEY", "")
        url = options.base_url or s.base_url or os.environ.get("OPENAI_BASE_URL", "")
        if not url:
            if not key:
                raise UsageError(f"The openai backend needs a server: set {SET_URL}, or an API key for api.openai.com with {SET_KEY}.")
            url = OPENAI_URL
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"The openai base URL {url!r} is not an http(s) URL. Set one like {SET_URL}.")
        return cls(url.rstrip("/"), key, options.timeout or s.timeout, options.max_retries, options.backoff, options.max_wait)

    @property
    def client(self) -> "httpx.Client":
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def display_url(self) -> str:
        """The base URL without any user:password part."""
        scheme, sep, rest = self.base_url.partition("://")
        host, slash, path = rest.partition("/")
        return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def redact(self, text: str) -> str:
        return text.replace(self.api_key, "***") if self.api_key else text

    @contextmanager
    def request(self, method: str, path: str, body: dict | None = None, stream: bool = False, retries: int | None = None) -> Iterator["httpx.Response"]:
        """An open, successful response; retried, and closed on exit. Errors are OpenAIErrors."""
        import httpx

        url = f"{self.base_url}{path}"
        retries = self.max_retries if retries is None else retries
        for attempt in range(retries + 1):
            last = attempt == retries
            try:
                response = self.client.send(self.client.build_request(method, url, json=body, headers=self.headers()), stream=stream)
            except httpx.TimeoutException as e:
                if last:
                    raise self._no_answer(path, e, attempt) from None
                self._sleep(attempt, retries, None, type(e).__name__)
                continue
            except (httpx.NetworkError, httpx.RemoteProtocolError) as e:
                if last:
                    raise self._no_answer(path, e, attempt) from None
                self._sleep(attempt, retries, None, type(e).__name__)
                continue
            try:
                if response.status_code in RETRY_STATUSES and not last:
                    wait = retry_after(response.headers)
                    response.read()
                    if wait is not None and wait > self.max_wait:
                        raise self._status_error(path, response, body, attempt, f" and asks to wait {wait:.0f} s")
                    self._sleep(attempt, retries, wait, f"HTTP {response.status_code}")
                    continue
                if response.is_error:
                    response.read()
                    raise self._status_error(path, response, body, attempt)
                yield response
                return
            finally:
                response.close()

    def _sleep(self, attempt: int, retries: int, wait: float | None, why: str) -> None:
        delay = min(self.max_wait, wait if wait is not None else self.backoff * 2**attempt)
        log.info("openai: %s from %s; retry %d/%d in %.2f s", why, self.display_url, attempt + 1, retries, delay)
        time.sleep(delay)

    def _no_answer(self, path: str, e: Exception, attempt: int) -> OpenAIError:
        import httpx

        tries = f" ({attempt + 1} tries)" if attempt else ""
        if isinstance(e, httpx.TimeoutException) and not isinstance(e, httpx.ConnectTimeout):
            return OpenAIError(
                f"No answer from {self.display_url}{path} within {self.timeout:g} s{tries}. "
                "Check that the server is not stuck, or raise %config OpenAICompat.timeout."
            )
        return OpenAIError(
            f"Could not connect to an OpenAI-compatible server at {self.display_url}{tries}: "
            f"{self.redact(str(e)) or type(e).__name__}. Start the server, or point to it with {SET_URL}."
        )

    def _status_error(self, path: str, response: "httpx.Response", body: dict | None, attempt: int, extra: str = "") -> OpenAIError:
        status, reason = response.status_code, self.redact(server_message(response))
        where = f"{self.display_url}{path}"
        if status in (401, 403):
            if not self.api_key:
                return OpenAIError(f"{where} needs an API key ({status}: {reason}). Set it with {SET_KEY}.", status)
            return OpenAIError(f"{where} rejected the API key ({status}: {reason}). Set the right one with {SET_KEY}.", status)
        if status == 404 and path in ("/chat/completions", "/embeddings"):
            return OpenAIError(self._not_found(where, (body or {}).get("model"), reason), status)
        tries = f" after {attempt + 1} tries" if attempt else ""
        if status == 429:
            return OpenAIError(f"{where} is rate limiting (429{tries}){extra}: {reason}. Wait and try again, or lower the request rate.", status)
        if status >= 500:
            return OpenAIError(f"{where} failed ({status}{tries}){extra}: {reason}. Check the server's log.", status)
        return OpenAIError(f"{where} refused the request ({status}): {reason}.", status)

    def _not_found(self, where: str, model: str | None, reason: str) -> str:
        try:
            available = self.models()
        except OpenAIError:
            return f"{where} answered 404: {reason}."
        if available is None:
            return (
                f"{where} does not exist (404: {reason}). Check the base URL {self.display_url}: "
                f"OpenAI-compatible servers serve under /v1. Set it with {SET_URL}."
            )
        if model and model not in available:
            names = ", ".join(available[:20]) or "(none)"
            return f"No model {model!r} on {self.display_url} (404: {reason}). Available: {names}. Use --model openai:NAME."
        return f"{where} answered 404: {reason}."

    def models(self) -> list[str] | None:
        """Model ids from ``/models``; None when the server has no such endpoint."""
        try:
            with self.request("GET", "/models", retries=0) as response:
                return [m.get("id", "") for m in response.json().get("data", [])]
        except OpenAIError as e:
            if e.status == 404:
                return None
            raise
        except (ValueError, AttributeError):
            return None

    def post_json(self, path: str, body: dict) -> dict:
        with self.request("POST", path, body) as response:
            try:
                return response.json()
            except ValueError:
                raise OpenAIError(f"{self.display_url}{path} did not answer JSON: {response.text[:200]!r}.") from None


def retry_after(headers) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def server_message(response: "httpx.Response") -> str:
    """The error text the server sent, on one short line."""
    try:
        data = response.json()
    except ValueError:
        text = response.text
    else:
        error = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(error, dict):
            text = error.get("message") or error.get("detail") or json.dumps(error)
        else:
            text = str(error)
    text = " ".join(str(text).split()) or response.reason_phrase
    return text[:300]


# ---------------------------------------------------------------------------
# Server-sent events
# ---------------------------------------------------------------------------


def sse_events(response: "httpx.Response", connection: Connection) -> Iterator[dict]:
    """JSON objects from ``data:`` lines until ``data: [DONE]``; comments and pings skipped."""
    import httpx

    lines = response.iter_lines()
    while True:
        try:
            line = next(lines)
        except StopIteration:
            return
        except httpx.TimeoutException:
            raise OpenAIError(
                f"{connection.display_url} stopped sending for {connection.timeout:g} s in the middle of a reply. "
                "Check the server, or raise %config OpenAICompat.timeout."
            ) from None
        except httpx.TransportError as e:
            raise OpenAIError(f"{connection.display_url} broke off the reply: {type(e).__name__}: {connection.redact(str(e))}.") from None
        if not line.startswith("data:"):
            continue  # blank separators, ": ping" comments, "event:" lines
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except ValueError:
            raise OpenAIError(f"{connection.display_url} sent a stream line that is not JSON: {data[:200]!r}.") from None
        if isinstance(event, dict) and event.get("error"):
            error = event["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise OpenAIError(f"{connection.display_url} stopped with an error: {connection.redact(str(message))[:300]}.")
        yield event


def server_root(base_url: str) -> str:
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


# ---------------------------------------------------------------------------
# The server's tokenizer, when it exposes one
# ---------------------------------------------------------------------------


@dataclass
class _Tokenizer:
    """Counts tokens through ``/tokenize`` (llama.cpp) or ``/extras/tokenize/count`` (llama-cpp-python)."""

    connection: Connection
    route: str | None = None  # "", "llama.cpp", "llama-cpp-python"; "" means none found

    def count(self, text: str, model: str | None) -> int | None:
        if self.route == "":
            return None
        routes = [self.route] if self.route else ["llama.cpp", "llama-cpp-python"]
        for route in routes:
            try:
                if route == "llama.cpp":
                    n = len(self.connection.post_json("/tokenize", {"content": text, "add_special": False})["tokens"])
                else:
                    n = int(self.connection.post_json("/extras/tokenize/count", {"input": text, "model": model})["count"])
            except (OpenAIError, KeyError, TypeError, ValueError):
                continue
            self.route = route
            return n
        if self.route is None:
            self.route = ""
        return None


_tokenizers: dict[str, _Tokenizer] = {}


def tokenizer_for(connection: Connection) -> _Tokenizer:
    key = f"{connection.base_url} {hash(connection.api_key)}"
    if key not in _tokenizers:
        root = Connection(server_root(connection.base_url), connection.api_key, min(connection.timeout, 10.0), 0)
        _tokenizers[key] = _Tokenizer(root)
    return _tokenizers[key]
