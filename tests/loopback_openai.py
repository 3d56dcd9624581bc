"""A loopback HTTP server that speaks the OpenAI Chat Completions (and Embeddings) contract, for tests.

`LoopbackOpenAI` listens on ``127.0.0.1`` (an ephemeral port) in a daemon thread and answers
``POST /v1/chat/completions`` (OpenAI) and
``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` (Azure OpenAI) well
enough for the official ``openai`` SDK clients (``OpenAI``, ``AsyncOpenAI``, ``AzureOpenAI``,
``AsyncAzureOpenAI``) to work against it, retries and timeouts included::

    with LoopbackOpenAI(faults=["429", "ok"]) as server:
        client = OpenAI(api_key=server.api_key, base_url=server.base_url, max_retries=2)
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        assert server.calls == 1 and [r["status"] for r in server.requests] == [429, 200]

The server knows nothing about the domain: the assistant message content comes from a pluggable
``responder(request_json) -> str``. The default, `echo_schema_responder`, returns a minimal JSON
instance of the request's ``response_format.json_schema.schema``.

Embeddings: ``POST /v1/embeddings`` and ``POST /openai/deployments/{deployment}/embeddings`` answer
with one vector per input from a pluggable ``embedder(text) -> list[float]`` (default
`bag_of_words_embedding`: texts that share words are alike), as floats or base64 as the request's
``encoding_format`` asks. They are counted in ``embedding_calls`` (not ``calls``), logged in
``requests``, bypass the chat fault schedule and the RPM/TPM limiter, and take their own fault
schedule ``embedding_faults`` ("ok", "429", "500", "503")::

    with LoopbackOpenAI(embedding_faults=["429"]) as server:
        client = OpenAI(api_key=server.api_key, base_url=server.base_url)
        vectors = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
        assert server.embedding_calls == 1 and len(vectors.data) == 2

Batch API: ``POST /v1/files`` (multipart ``purpose`` + ``file``), ``GET /v1/files/{id}``,
``GET /v1/files/{id}/content``, ``POST /v1/batches``, ``GET /v1/batches/{id}`` and
``POST /v1/batches/{id}/cancel``, and the same under ``/openai/files`` and ``/openai/batches`` with
an ``api-version`` query (Azure OpenAI, whose batch endpoint and line urls are ``/chat/completions``).
Each retrieve advances a batch one step: ``validating`` (the input file is checked line by line; a
bad line fails the batch with ``errors``) → ``in_progress`` → a terminal status. Every input line
is then answered by the same `responder` realtime uses, with the same ``body``, as a
chat.completion with usage; output and error files are written in shuffled order (never the input
order, when there are two lines or more). Batch lines bypass the chat fault schedule and the
RPM/TPM limiter, are counted in ``batch_lines`` (not ``calls``), and take a per-line schedule
``batch_line_faults``: "ok", "500" (an error-file line with ``status_code`` 500), "malformed" /
"truncated" (as realtime), "unfinished" (the line is in neither file) or "foreign" (answered under
a custom_id that names no request of the batch, so the request itself goes unanswered). A
per-batch schedule ``batch_outcomes`` decides how each new batch ends: "complete" (the default),
"expire" / "expire:N" (only the first N lines are run, the rest go to the error file as
``batch_expired``), "fail" (status ``failed`` with ``errors``) or "stuck" (``in_progress`` until
cancelled; a cancelled batch's lines that never ran go to the error file as ``batch_cancelled``).
Counters: ``file_uploads``, ``batches_created``, ``batch_lines``; `batches` and `file_content`
show what was submitted::

    with LoopbackOpenAI(batch_outcomes=["expire:1"]) as server:
        client = OpenAI(api_key=server.api_key, base_url=server.base_url)
        upload = client.files.create(file=("in.jsonl", jsonl), purpose="batch")
        batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        while batch.status not in ("completed", "failed", "expired", "cancelled"):
            batch = client.batches.retrieve(batch.id)
        lines = client.files.content(batch.output_file_id).content.splitlines()

Token accounting is an estimate, not a tokenizer: **tokens = len(text) // 4**.

- ``prompt_tokens``: the concatenated text of all message contents, // 4.
- ``completion_tokens``: the returned content, // 4.
- ``prompt_tokens_details.cached_tokens``: the common prefix of this request's first (system)
  message with the first message of the previous request that reached the model, // 4.
- The TPM limiter charges a request ``prompt_tokens + (max_completion_tokens or max_tokens or 0)``.

Request processing order for a chat completion request: auth (401) → body validation (400) →
one fault is picked (the next entry of the ``faults`` schedule, else a random one with
probability ``fault_rate``, else ``"ok"``) → ``latency_s`` sleep → forced fault responses
("500", "503", "429") → RPM/TPM limiter (429) → "timeout" sleep → responder → "malformed" /
"truncated" content mutation → 200.
"""

from __future__ import annotations

import base64
import copy
import email.parser
import email.policy
import hashlib
import json
import math
import os
import random
import re
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.loopback_http import QuietHTTPServer

__all__ = [
    "BATCH_LINE_FAULT_KINDS",
    "BATCH_TERMINAL_STATUSES",
    "DEFAULT_API_KEY",
    "DEFAULT_FAULT_KINDS",
    "EMBEDDING_FAULT_KINDS",
    "FAULT_KINDS",
    "MALFORMED_CONTENT",
    "Embedder",
    "LoopbackOpenAI",
    "Responder",
    "bag_of_words_embedding",
    "echo_schema_responder",
    "estimate_tokens",
    "minimal_json_instance",
]

Responder = Callable[[dict[str, Any]], str]
"""Given the parsed request JSON, return the assistant message content."""

Embedder = Callable[[str], Sequence[float]]
"""Given one input text, return its embedding vector."""

DEFAULT_API_KEY = "sk-loopback-test"
FAULT_KINDS: frozenset[str] = frozenset({"ok", "500", "503", "timeout", "malformed", "truncated", "429"})
DEFAULT_FAULT_KINDS: tuple[str, ...] = ("500", "503", "429", "malformed", "truncated")
EMBEDDING_FAULT_KINDS: frozenset[str] = frozenset({"ok", "500", "503", "429"})
BATCH_LINE_FAULT_KINDS: frozenset[str] = frozenset({"ok", "500", "malformed", "truncated", "unfinished", "foreign"})
BATCH_TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "expired", "cancelled"})
MALFORMED_CONTENT = "{not json"
REDACTED_HEADERS = frozenset({"authorization", "api-key"})

_OPENAI_PATH = "/v1/chat/completions"
_AZURE_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions$")
_OPENAI_EMBEDDINGS_PATH = "/v1/embeddings"
_AZURE_EMBEDDINGS_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/embeddings$")
_FILES_PATH = re.compile(r"^/(?P<prefix>v1|openai)/files(?:/(?P<file_id>[^/]+)(?P<content>/content)?)?$")
_BATCHES_PATH = re.compile(r"^/(?P<prefix>v1|openai)/batches(?:/(?P<batch_id>[^/]+)(?P<cancel>/cancel)?)?$")
_BATCH_OUTCOME = re.compile(r"^(complete|fail|stuck|expire(:\d+)?)$")
_BATCH_ENDPOINTS = {"v1": frozenset({"/v1/chat/completions"}),
                    "openai": frozenset({"/chat/completions", "/v1/chat/completions"})}
_FILE_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})


# --------------------------------------------------------------------------------------------
# Token estimate and the default responder
# --------------------------------------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """Estimated token count of `text`: ``len(text) // 4`` (deliberately crude, deterministic)."""
    return len(text) // 4


def _message_text(message: Any) -> str:
    """The text of one chat message: string content, or the ``text`` parts of a content list."""
    if not isinstance(message, Mapping):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""


def _prompt_tokens(messages: Sequence[Any]) -> int:
    """The estimated prompt tokens of a request: the concatenated text of all messages."""
    return estimate_tokens("".join(_message_text(message) for message in messages))


_STRING_FORMATS: dict[str, str] = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00",
    "duration": "P0D",
    "email": "user@example.com",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uuid": "00000000-0000-0000-0000-000000000000",
    "uri": "https://example.com",
}


def _resolve_ref(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Resolve a local JSON pointer such as ``#/$defs/Item`` against the root schema."""
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref values are supported, got {ref!r}")
    node: Any = root
    for token in filter(None, ref[1:].split("/")):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    if not isinstance(node, Mapping):
        raise ValueError(f"$ref {ref!r} does not point at a schema")
    return node


def _merge_all_of(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten ``allOf`` into one schema (properties and required lists are unioned)."""
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for sub in schema["allOf"]:
        while "$ref" in sub:
            sub = {**_resolve_ref(sub["$ref"], root), **{k: v for k, v in sub.items() if k != "$ref"}}
        if "allOf" in sub:
            sub = _merge_all_of(sub, root)
        for key, value in sub.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _minimal_number(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    value: float = 0
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    ex_min, ex_max = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(minimum, int | float) and value < minimum:
        value = math.ceil(minimum) if integer else minimum
    if isinstance(ex_min, int | float) and value <= ex_min:
        value = math.floor(ex_min) + 1 if integer else ex_min + 1
    if isinstance(maximum, int | float) and value > maximum:
        value = math.floor(maximum) if integer else maximum
    if isinstance(ex_max, int | float) and value >= ex_max:
        value = math.ceil(ex_max) - 1 if integer else ex_max - 1
    return int(value) if integer else value


def minimal_json_instance(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None, _depth: int = 0) -> Any:
    """Build a small instance that validates against `schema` (a JSON Schema as used by strict mode).

    Rules: ``$ref`` (local, incl. ``$defs``/``definitions``) is followed; ``const`` → its value;
    ``enum`` → first value; ``anyOf``/``oneOf`` → first branch; ``allOf`` → merged; object →
    only the ``required`` properties; array → ``[]`` or ``minItems`` copies of the item; string →
    ``""`` (or ``minLength`` × ``"x"``, or a sample for a known ``format``); number/integer → 0
    nudged into ``minimum``/``maximum``; boolean → ``False``; null or an empty schema → ``None``.
    ``pattern`` and ``multipleOf`` are not honoured.
    """
    root = schema if root is None else root
    if _depth > 64:
        raise ValueError("schema nesting too deep (recursive $ref without a terminating branch?)")
    if "$ref" in schema:
        target = _resolve_ref(schema["$ref"], root)
        return minimal_json_instance({**target, **{k: v for k, v in schema.items() if k != "$ref"}}, root, _depth + 1)
    if "const" in schema:
        return copy.deepcopy(schema["const"])
    if schema.get("enum"):
        return copy.deepcopy(schema["enum"][0])
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return minimal_json_instance(schema[key][0], root, _depth + 1)
    if schema.get("allOf"):
        return minimal_json_instance(_merge_all_of(schema, root), root, _depth + 1)

    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        if "properties" in schema:
            kind = "object"
        elif "items" in schema or "prefixItems" in schema:
            kind = "array"

    if kind == "object":
        properties: Mapping[str, Any] = schema.get("properties", {})
        return {
            name: minimal_json_instance(properties.get(name, {}), root, _depth + 1)
            for name in schema.get("required", [])
        }
    if kind == "array":
        prefix = [minimal_json_instance(sub, root, _depth + 1) for sub in schema.get("prefixItems", [])]
        missing = max(0, int(schema.get("minItems", 0)) - len(prefix))
        if missing:
            item = schema.get("items")
            prefix += [minimal_json_instance(item if isinstance(item, Mapping) else {}, root, _depth + 1)] * missing
        return prefix
    if kind == "string":
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _STRING_FORMATS:
            return _STRING_FORMATS[fmt]
        return "x" * int(schema.get("minLength", 0))
    if kind == "integer":
        return _minimal_number(schema, integer=True)
    if kind == "number":
        return _minimal_number(schema, integer=False)
    if kind == "boolean":
        return False
    return None


def echo_schema_responder(request: Mapping[str, Any]) -> str:
    """Default responder: a minimal valid JSON instance of the requested structured output.

    ``response_format={"type": "json_schema", ...}`` → `minimal_json_instance` of its schema;
    ``{"type": "json_object"}`` → ``"{}"``; anything else (plain text) → ``"ok"``.
    """
    response_format = request.get("response_format")
    if isinstance(response_format, Mapping):
        if response_format.get("type") == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema") or {}
            return json.dumps(minimal_json_instance(schema), separators=(",", ":"))
        if response_format.get("type") == "json_object":
            return "{}"
    return "ok"


def bag_of_words_embedding(text: str, dimensions: int = 64) -> list[float]:
    """A deterministic stand-in for an embedding: hashed lower-case word counts at unit length."""
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dimensions] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


def _go_duration(seconds: float) -> str:
    """Format like OpenAI's ``x-ratelimit-reset-*`` headers: ``20ms``, ``1.5s``, ``6m0s``."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    rest_text = f"{rest:.3f}".rstrip("0").rstrip(".")
    return f"{int(minutes)}m{rest_text}s" if minutes else f"{rest_text}s"


def _error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class _Reply(Exception):
    """Raised inside request handling to send an (error) response immediately."""

    def __init__(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


class _ResponderFailed(Exception):
    """The responder raised or returned a non-string: the request is answered with a 500."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(cause)
        self.body = _error_body(f"LoopbackOpenAI responder failed: {cause!r}", "server_error", "responder_error")


class _Abort(Exception):
    """The server is shutting down mid-request: drop the connection without answering."""


class _HTTPServer(QuietHTTPServer):
    owner: LoopbackOpenAI
    block_on_close = False  # LoopbackOpenAI.close() unblocks and joins handler threads itself


class _Handler(BaseHTTPRequestHandler):
    """Per-connection handler; all logic lives in `LoopbackOpenAI._handle`."""

    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
    server_version = "LoopbackOpenAI/1.0"

    def setup(self) -> None:
        super().setup()
        self.server.owner._track_connection(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track_connection(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the stdlib's per-request stderr logging."""

    def do_POST(self) -> None:
        self.server.owner._handle(self)

    def do_GET(self) -> None:
        self.server.owner._handle(self)

    def read_body(self) -> bytes:
        """Read the request body (Content-Length or chunked)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, body: Mapping[str, Any] | bytes, headers: Mapping[str, str]) -> None:
        """Write one JSON response (raw bytes as a binary one); a vanished client is not an error."""
        binary = isinstance(body, bytes)
        payload = body if binary else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream" if binary else "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


def _check_faults(kinds: Iterable[str]) -> list[str]:
    kinds = [str(kind) for kind in kinds]
    unknown = sorted(set(kinds) - FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kind(s) {unknown}; expected some of {sorted(FAULT_KINDS)}")
    return kinds


def _check_embedding_faults(kinds: Iterable[str]) -> list[str]:
    kinds = [str(kind) for kind in kinds]
    unknown = sorted(set(kinds) - EMBEDDING_FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown embedding fault kind(s) {unknown}; expected some of {sorted(EMBEDDING_FAULT_KINDS)}")
    return kinds


def _check_batch_line_faults(kinds: Iterable[str]) -> list[str]:
    kinds = [str(kind) for kind in kinds]
    unknown = sorted(set(kinds) - BATCH_LINE_FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown batch line fault kind(s) {unknown}; expected some of {sorted(BATCH_LINE_FAULT_KINDS)}")
    return kinds


def _check_batch_outcomes(outcomes: Iterable[str]) -> list[str]:
    outcomes = [str(outcome) for outcome in outcomes]
    unknown = [outcome for outcome in outcomes if not _BATCH_OUTCOME.match(outcome)]
    if unknown:
        raise ValueError(f"unknown batch outcome(s) {unknown}; expected complete, fail, stuck, expire or expire:N")
    return outcomes


def _multipart_fields(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The parts of a multipart/form-data body by field name: (filename, content)."""
    if not content_type.lower().startswith("multipart/form-data"):
        return {}
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        return {}
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


def _batch_error(code: str, message: str, line: int | None = None, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def _batch_input(content: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The request lines of a batch input file, and the validation errors that fail the batch."""
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        if not isinstance(line, dict):
            errors.append(_batch_error("invalid_json_line", "This line is not parseable as valid JSON.", number))
            continue
        custom_id, body = line.get("custom_id"), line.get("body")
        if not isinstance(custom_id, str) or not custom_id:
            errors.append(_batch_error("missing_required_parameter", "Missing custom_id.", number, "custom_id"))
        elif custom_id in seen:
            errors.append(_batch_error("duplicate_custom_id", "The custom_id for this request is a duplicate.", number,
                                       "custom_id"))
        elif line.get("method") != "POST":
            errors.append(_batch_error("invalid_request", "Only POST requests are supported.", number, "method"))
        elif line.get("url") != endpoint:
            errors.append(_batch_error("invalid_url", f"The url must be the batch endpoint {endpoint}.", number, "url"))
        elif not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"] \
                or not isinstance(body.get("messages"), list) or not body["messages"] or body.get("stream"):
            errors.append(_batch_error("invalid_request", "The body needs a model and non-empty messages, "
                                       "without stream.", number, "body"))
        else:
            seen.add(custom_id)
            lines.append(line)
    if not lines and not errors:
        errors.append(_batch_error("empty_file", "The input file has no requests."))
    return lines, errors


def _check_optional_limit(name: str, value: int | None) -> int | None:
    if value is not None and value < 0:
        raise ValueError(f"{name} must be >= 0 or None, got {value}")
    return value


class LoopbackOpenAI:
    """Loopback OpenAI/Azure OpenAI Chat Completions server with fault injection and a request log.

    Args:
        responder: builds the assistant content from the parsed request JSON
            (default `echo_schema_responder`).
        api_key: the accepted key: ``Authorization: Bearer <key>`` on the OpenAI path,
            ``api-key: <key>`` (or ``Authorization: Bearer <key>``) on the Azure path.
            ``None`` accepts any non-empty credential.
        latency_s: sleep before answering every authenticated chat completion request.
        rpm_limit, tpm_limit: requests / estimated tokens allowed per sliding window
            (``None`` = unlimited); an excess request gets a 429 with ``Retry-After``.
        rate_window_s: the sliding window length (60 s, like the real API; shorten in tests).
        faults: a schedule consumed one entry per chat completion request, in order.
        fault_rate: probability of a random fault (drawn from ``fault_kinds``) once the
            schedule is exhausted; uses ``random.Random(seed)``.
        timeout_sleep_s: how long a "timeout" fault stalls before answering normally.
        embedder: builds the vector of one embeddings input (default `bag_of_words_embedding`).
        embedding_faults: a schedule consumed one entry per embeddings request, in order.
        serve_embeddings: False makes the server chat-only, like many vLLM or Ollama setups: every
            embeddings request gets a 404.
        batch_line_faults: a schedule consumed one entry per batch input line run, in order of
            the lines (batch after batch).
        batch_outcomes: a schedule consumed one entry per created batch: "complete", "expire",
            "expire:N", "fail" or "stuck".

    Every setting except ``rate_window_s``/``seed`` is a thread-safe property that may be changed
    while the server runs. Use as a context manager, or call `start` / `close`.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        api_key: str | None = DEFAULT_API_KEY,
        latency_s: float = 0.0,
        rpm_limit: int | None = None,
        tpm_limit: int | None = None,
        rate_window_s: float = 60.0,
        faults: Sequence[str] = (),
        fault_rate: float = 0.0,
        fault_kinds: Sequence[str] = DEFAULT_FAULT_KINDS,
        seed: int = 0,
        timeout_sleep_s: float = 5.0,
        embedder: Embedder | None = None,
        embedding_faults: Sequence[str] = (),
        serve_embeddings: bool = True,
        batch_line_faults: Sequence[str] = (),
        batch_outcomes: Sequence[str] = (),
    ) -> None:
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._responder: Responder = responder or echo_schema_responder
        self._api_key = api_key
        self._latency_s = float(latency_s)
        self._rpm_limit = _check_optional_limit("rpm_limit", rpm_limit)
        self._tpm_limit = _check_optional_limit("tpm_limit", tpm_limit)
        self._rate_window_s = float(rate_window_s)
        self._faults: deque[str] = deque(_check_faults(faults))
        self.fault_rate = fault_rate
        self._fault_kinds: tuple[str, ...] = tuple(_check_faults(fault_kinds))
        if not self._fault_kinds:
            raise ValueError("fault_kinds must not be empty")
        self._rng = random.Random(seed)
        self._timeout_sleep_s = float(timeout_sleep_s)
        self._embedder: Embedder = embedder or bag_of_words_embedding
        self._embedding_faults: deque[str] = deque(_check_embedding_faults(embedding_faults))
        self._serve_embeddings = serve_embeddings
        self._batch_line_faults: deque[str] = deque(_check_batch_line_faults(batch_line_faults))
        self._batch_outcomes: deque[str] = deque(_check_batch_outcomes(batch_outcomes))
        self._batch_rng = random.Random(seed)
        # Serializes batch progress, so concurrent retrieves advance a batch one step each.
        self._batch_progress = threading.Lock()

        self._requests: list[dict[str, Any]] = []
        self._calls = 0
        self._embedding_calls = 0
        self._file_uploads = 0
        self._batches_created = 0
        self._batch_lines = 0
        self._files: dict[str, dict[str, Any]] = {}
        self._batches: dict[str, dict[str, Any]] = {}
        self._request_times: deque[float] = deque()
        self._token_charges: deque[tuple[float, int]] = deque()
        self._previous_first_message: str | None = None

        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: dict[socket.socket, threading.Thread] = {}

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> LoopbackOpenAI:
        """Bind an ephemeral port on 127.0.0.1 and serve in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("LoopbackOpenAI is already started")
        self._stop.clear()
        self._httpd = _HTTPServer(self, _Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-openai", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving: abort sleeping requests, drop open connections, join the threads."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stop.set()
        httpd.shutdown()
        with self._lock:
            connections = dict(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        for handler_thread in connections.values():
            handler_thread.join(timeout=5)
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> LoopbackOpenAI:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (only while started)."""
        if self._httpd is None:
            raise RuntimeError("LoopbackOpenAI is not started; use it as a context manager or call start()")
        return int(self._httpd.server_address[1])

    @property
    def azure_endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: pass as ``AzureOpenAI(azure_endpoint=...)``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: pass as ``OpenAI(base_url=...)``."""
        return f"{self.azure_endpoint}/v1"

    @property
    def api_key(self) -> str:
        """A key the server accepts (the configured one, or a placeholder when any key goes)."""
        return self._api_key if self._api_key is not None else DEFAULT_API_KEY

    # ---- runtime-tunable settings (thread-safe) --------------------------------------------

    @property
    def responder(self) -> Responder:
        """The content builder (parsed request JSON → content string)."""
        with self._lock:
            return self._responder

    @responder.setter
    def responder(self, value: Responder) -> None:
        with self._lock:
            self._responder = value

    @property
    def latency_s(self) -> float:
        """Seconds slept before answering each authenticated chat completion request."""
        with self._lock:
            return self._latency_s

    @latency_s.setter
    def latency_s(self, value: float) -> None:
        with self._lock:
            self._latency_s = float(value)

    @property
    def rpm_limit(self) -> int | None:
        """Requests per sliding window, or ``None`` for unlimited."""
        with self._lock:
            return self._rpm_limit

    @rpm_limit.setter
    def rpm_limit(self, value: int | None) -> None:
        with self._lock:
            self._rpm_limit = _check_optional_limit("rpm_limit", value)

    @property
    def tpm_limit(self) -> int | None:
        """Estimated tokens per sliding window, or ``None`` for unlimited."""
        with self._lock:
            return self._tpm_limit

    @tpm_limit.setter
    def tpm_limit(self, value: int | None) -> None:
        with self._lock:
            self._tpm_limit = _check_optional_limit("tpm_limit", value)

    @property
    def faults(self) -> list[str]:
        """The remaining fault schedule (a copy); assigning replaces it."""
        with self._lock:
            return list(self._faults)

    @faults.setter
    def faults(self, value: Iterable[str]) -> None:
        kinds = _check_faults(value)
        with self._lock:
            self._faults = deque(kinds)

    def add_faults(self, *kinds: str) -> None:
        """Append entries to the fault schedule."""
        checked = _check_faults(kinds)
        with self._lock:
            self._faults.extend(checked)

    @property
    def fault_rate(self) -> float:
        """Probability in [0, 1] of a random fault once the schedule is exhausted."""
        with self._lock:
            return self._fault_rate

    @fault_rate.setter
    def fault_rate(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"fault_rate must be within [0, 1], got {value}")
        with self._lock:
            self._fault_rate = float(value)

    @property
    def fault_kinds(self) -> tuple[str, ...]:
        """The kinds random faults are drawn from."""
        with self._lock:
            return self._fault_kinds

    @fault_kinds.setter
    def fault_kinds(self, value: Sequence[str]) -> None:
        kinds = tuple(_check_faults(value))
        if not kinds:
            raise ValueError("fault_kinds must not be empty")
        with self._lock:
            self._fault_kinds = kinds

    @property
    def timeout_sleep_s(self) -> float:
        """How long a "timeout" fault stalls before answering normally."""
        with self._lock:
            return self._timeout_sleep_s

    @timeout_sleep_s.setter
    def timeout_sleep_s(self, value: float) -> None:
        with self._lock:
            self._timeout_sleep_s = float(value)

    @property
    def embedding_faults(self) -> list[str]:
        """The remaining embeddings fault schedule (a copy); assigning replaces it."""
        with self._lock:
            return list(self._embedding_faults)

    @embedding_faults.setter
    def embedding_faults(self, value: Iterable[str]) -> None:
        kinds = _check_embedding_faults(value)
        with self._lock:
            self._embedding_faults = deque(kinds)

    @property
    def batch_line_faults(self) -> list[str]:
        """The remaining batch line fault schedule (a copy); assigning replaces it."""
        with self._lock:
            return list(self._batch_line_faults)

    @batch_line_faults.setter
    def batch_line_faults(self, value: Iterable[str]) -> None:
        kinds = _check_batch_line_faults(value)
        with self._lock:
            self._batch_line_faults = deque(kinds)

    @property
    def batch_outcomes(self) -> list[str]:
        """The remaining per-batch outcome schedule (a copy); assigning replaces it."""
        with self._lock:
            return list(self._batch_outcomes)

    @batch_outcomes.setter
    def batch_outcomes(self, value: Iterable[str]) -> None:
        outcomes = _check_batch_outcomes(value)
        with self._lock:
            self._batch_outcomes = deque(outcomes)

    # ---- observations ----------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Snapshot of the request log, oldest first.

        Each entry: ``method``, ``path`` (with query string), ``headers`` (lower-cased names,
        ``authorization``/``api-key`` values redacted to ``"***"``), ``body`` (parsed JSON, or
        ``None``), ``status`` (``None`` while in flight or if aborted), ``fault`` (the fault
        kind applied; ``"rpm_limit"``/``"tpm_limit"`` for limiter 429s; ``None`` when the
        request never reached fault selection, e.g. 401/400/404).
        """
        with self._lock:
            return copy.deepcopy(self._requests)

    @property
    def calls(self) -> int:
        """Chat completion requests answered with 200."""
        with self._lock:
            return self._calls

    @property
    def embedding_calls(self) -> int:
        """Embeddings requests answered with 200."""
        with self._lock:
            return self._embedding_calls

    @property
    def file_uploads(self) -> int:
        """Files uploaded with 200 (``POST /v1/files``)."""
        with self._lock:
            return self._file_uploads

    @property
    def batches_created(self) -> int:
        """Batches created with 200 (``POST /v1/batches``)."""
        with self._lock:
            return self._batches_created

    @property
    def batch_lines(self) -> int:
        """Batch input lines run (answered, or failed with a 500), across all batches."""
        with self._lock:
            return self._batch_lines

    @property
    def batches(self) -> list[dict[str, Any]]:
        """Snapshot of the batch objects, in creation order, as the API would show them now."""
        with self._lock:
            return [copy.deepcopy(stored["object"]) for stored in self._batches.values()]

    def file_content(self, file_id: str) -> bytes:
        """The bytes of a stored file (an upload, or a batch's output or error file)."""
        with self._lock:
            return self._files[file_id]["content"]

    def clear_requests(self) -> None:
        """Empty the request log and reset the counters (limits, schedules, files, batches and cache state are kept)."""
        with self._lock:
            self._requests.clear()
            self._calls = 0
            self._embedding_calls = 0
            self._file_uploads = 0
            self._batches_created = 0
            self._batch_lines = 0

    # ---- internals -------------------------------------------------------------------------

    def _track_connection(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections[conn] = threading.current_thread()
            else:
                self._connections.pop(conn, None)

    def _sleep(self, seconds: float) -> None:
        """Sleep, but abort the request if the server is closing meanwhile."""
        if seconds > 0 and self._stop.wait(seconds):
            raise _Abort

    def _handle(self, handler: _Handler) -> None:
        """Answer one HTTP request and record it in the log."""
        raw_body = handler.read_body() if handler.command == "POST" else b""
        headers = {name.lower(): value for name, value in handler.headers.items()}
        entry: dict[str, Any] = {
            "method": handler.command,
            "path": handler.path,
            "headers": {name: ("***" if name in REDACTED_HEADERS else value) for name, value in headers.items()},
            "body": None,
            "status": None,
            "fault": None,
        }
        try:
            entry["body"] = json.loads(raw_body) if raw_body else None
        except ValueError:
            entry["body"] = None
        with self._lock:
            self._requests.append(entry)

        path = urlsplit(handler.path).path
        embeddings = path == _OPENAI_EMBEDDINGS_PATH or _AZURE_EMBEDDINGS_PATH.match(path) is not None
        if embeddings and not self._serve_embeddings:
            embeddings = False  # a chat-only server does not know the path: the chat route answers 404
        if _FILES_PATH.match(path):
            route = self._files_route
        elif _BATCHES_PATH.match(path):
            route = self._batches_route
        else:
            route = self._embeddings if embeddings else self._chat_completion
        try:
            status, body, extra_headers = route(handler.command, handler.path, headers, raw_body, entry)
        except _Reply as reply:
            status, body, extra_headers = reply.status, reply.body, reply.headers
        except _Abort:
            handler.close_connection = True
            return

        extra_headers.setdefault("x-request-id", f"req_{uuid.uuid4().hex}")
        with self._lock:
            entry["status"] = status
            if status == 200 and route == self._embeddings:
                self._embedding_calls += 1
            elif status == 200 and route == self._chat_completion:
                self._calls += 1
        handler.send_json(status, body, extra_headers)

    def _embeddings(
        self, method: str, raw_path: str, headers: Mapping[str, str], raw_body: bytes, entry: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        url = urlsplit(raw_path)
        azure = _AZURE_EMBEDDINGS_PATH.match(url.path)
        if method != "POST":
            raise _Reply(405, _error_body(f"Method {method} not allowed", "invalid_request_error", None))
        self._check_auth(headers, azure=azure is not None)
        if azure is not None and not parse_qs(url.query).get("api-version"):
            raise _Reply(404, {"error": {"code": "404", "message": "Resource not found"}})
        try:
            request = json.loads(raw_body or b"null")
        except ValueError as exc:
            raise _Reply(400, _error_body(f"Invalid JSON body: {exc}", "invalid_request_error", None)) from None
        if not isinstance(request, dict):
            raise _Reply(400, _error_body("The body must be a JSON object", "invalid_request_error", None))
        inputs = request.get("input")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) and i for i in inputs):
            message = "'input' must be a non-empty string or a non-empty array of non-empty strings"
            raise _Reply(400, _error_body(message, "invalid_request_error", None, "input"))
        if not request.get("model") and azure is None:
            raise _Reply(400, _error_body("you must provide a model parameter", "invalid_request_error", None, "model"))
        encoding = request.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise _Reply(400, _error_body(f"Invalid encoding_format {encoding!r}", "invalid_request_error", None,
                                          "encoding_format"))

        with self._lock:
            fault = self._embedding_faults.popleft() if self._embedding_faults else "ok"
            entry["fault"] = fault
        if fault == "429":
            raise _Reply(429, _error_body("Rate limit reached (injected fault). Please try again in 1s.",
                                          "rate_limit_error", "rate_limit_exceeded"), {"Retry-After": "1"})
        if fault in ("500", "503"):
            raise _Reply(int(fault), _error_body("The server had an error while processing your request.",
                                                 "server_error", None))

        with self._lock:
            embedder = self._embedder
        data = []
        for index, text in enumerate(inputs):
            vector = [float(v) for v in embedder(text)]
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if encoding == "base64" else vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(estimate_tokens(text) for text in inputs)
        model = str(request.get("model") or (azure.group("deployment") if azure else ""))
        body = {"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        return 200, body, {"openai-processing-ms": "1"}

    def _chat_completion(
        self, method: str, raw_path: str, headers: Mapping[str, str], raw_body: bytes, entry: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        url = urlsplit(raw_path)
        azure = _AZURE_PATH.match(url.path)
        if url.path != _OPENAI_PATH and azure is None:
            raise _Reply(404, _error_body(f"Unknown path {url.path!r}", "invalid_request_error", "unknown_url"))
        if method != "POST":
            raise _Reply(405, _error_body(f"Method {method} not allowed", "invalid_request_error", None))

        self._check_auth(headers, azure=azure is not None)
        if azure is not None and not parse_qs(url.query).get("api-version"):
            raise _Reply(404, {"error": {"code": "404", "message": "Resource not found"}})

        try:
            request = json.loads(raw_body or b"null")
        except ValueError as exc:
            raise _Reply(400, _error_body(f"Invalid JSON body: {exc}", "invalid_request_error", None)) from None
        if not isinstance(request, dict):
            raise _Reply(400, _error_body("The body must be a JSON object", "invalid_request_error", None))
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _Reply(
                400, _error_body("'messages' must be a non-empty array", "invalid_request_error", None, "messages")
            )
        if not request.get("model") and azure is None:
            raise _Reply(400, _error_body("you must provide a model parameter", "invalid_request_error", None, "model"))
        if request.get("stream"):
            message = "stream=true is not supported by LoopbackOpenAI"
            raise _Reply(400, _error_body(message, "invalid_request_error", None, "stream"))
        model = str(request.get("model") or (azure.group("deployment") if azure else ""))

        fault = self._next_fault()
        with self._lock:
            entry["fault"] = fault
        self._sleep(self.latency_s)

        if fault == "429":
            raise _Reply(
                429,
                _error_body(
                    "Rate limit reached (injected fault). Please try again in 1s.",
                    "rate_limit_error",
                    "rate_limit_exceeded",
                ),
                {"Retry-After": "1"},
            )
        if fault == "500":
            raise _Reply(
                500, _error_body("The server had an error while processing your request.", "server_error", None)
            )
        if fault == "503":
            raise _Reply(
                503,
                _error_body("The engine is currently overloaded, please try again later.", "server_error", None),
            )

        max_out = request.get("max_completion_tokens") or request.get("max_tokens") or 0
        rate_headers = self._admit(_prompt_tokens(messages) + int(max_out), entry)

        if fault == "timeout":
            self._sleep(self.timeout_sleep_s)

        try:
            body = self._answer(request, model, fault)
        except _ResponderFailed as failure:
            with self._lock:
                entry["fault"] = "responder_error"
            raise _Reply(500, failure.body, {"x-should-retry": "false"}) from None
        return 200, body, {"openai-processing-ms": "1", **rate_headers}

    def _answer(self, request: dict[str, Any], model: str, fault: str) -> dict[str, Any]:
        """The chat.completion body for a valid request: the responder's content, the fault's mutation, usage."""
        messages = request["messages"]
        prompt_tokens = _prompt_tokens(messages)
        first_message = _message_text(messages[0])
        with self._lock:
            previous, self._previous_first_message = self._previous_first_message, first_message
        cached_tokens = estimate_tokens(os.path.commonprefix([previous, first_message])) if previous else 0

        try:
            content = self.responder(request)
            if not isinstance(content, str):
                raise TypeError(f"responder must return str, got {type(content).__name__}")
        except Exception as exc:  # noqa: BLE001 - reported to the client, which is the test
            raise _ResponderFailed(exc) from None

        finish_reason = "stop"
        if fault == "malformed":
            content = MALFORMED_CONTENT
        elif fault == "truncated":
            content = content[: len(content) // 2]
            finish_reason = "length"

        completion_tokens = estimate_tokens(content)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_loopback",
        }

    # ---- Files and Batches ---------------------------------------------------------------

    def _batch_api_match(self, raw_path: str, headers: Mapping[str, str], pattern: re.Pattern[str]) -> re.Match[str]:
        """Authenticate a Files/Batches request; Azure paths (``/openai/...``) need an api-version."""
        url = urlsplit(raw_path)
        match = pattern.match(url.path)
        assert match is not None  # routed here by this very pattern
        azure = match.group("prefix") == "openai"
        self._check_auth(headers, azure=azure)
        if azure and not parse_qs(url.query).get("api-version"):
            raise _Reply(404, {"error": {"code": "404", "message": "Resource not found"}})
        return match

    def _files_route(
        self, method: str, raw_path: str, headers: Mapping[str, str], raw_body: bytes, entry: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | bytes, dict[str, str]]:
        match = self._batch_api_match(raw_path, headers, _FILES_PATH)
        file_id = match.group("file_id")
        if file_id is None:
            if method != "POST":
                raise _Reply(405, _error_body(f"Method {method} not allowed", "invalid_request_error", None))
            return 200, self._upload(headers.get("content-type", ""), raw_body), {}
        if method != "GET":
            raise _Reply(405, _error_body(f"Method {method} not allowed", "invalid_request_error", None))
        with self._lock:
            stored = self._files.get(file_id)
            if stored is None:
                raise _Reply(404, _error_body(f"No such File object: {file_id}", "invalid_request_error", None, "id"))
            return 200, (stored["content"] if match.group("content") else copy.deepcopy(stored["object"])), {}

    def _upload(self, content_type: str, raw_body: bytes) -> dict[str, Any]:
        fields = _multipart_fields(content_type, raw_body)
        if "file" not in fields or "purpose" not in fields:
            raise _Reply(400, _error_body("A multipart/form-data body with 'file' and 'purpose' is required.",
                                          "invalid_request_error", None, "file"))
        purpose = fields["purpose"][1].decode("utf-8", "replace")
        if purpose not in _FILE_PURPOSES:
            raise _Reply(400, _error_body(f"Invalid purpose {purpose!r}", "invalid_request_error", None, "purpose"))
        filename, content = fields["file"]
        stored = self._store_file(filename or "upload", content, purpose)
        with self._lock:
            self._file_uploads += 1
        return stored

    def _store_file(self, filename: str, content: bytes, purpose: str) -> dict[str, Any]:
        file_object = {"id": f"file-{uuid.uuid4().hex[:24]}", "object": "file", "bytes": len(content),
                       "created_at": int(time.time()), "filename": filename, "purpose": purpose,
                       "status": "processed", "status_details": None}
        with self._lock:
            self._files[file_object["id"]] = {"object": file_object, "content": content}
        return copy.deepcopy(file_object)

    def _batches_route(
        self, method: str, raw_path: str, headers: Mapping[str, str], raw_body: bytes, entry: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        match = self._batch_api_match(raw_path, headers, _BATCHES_PATH)
        batch_id = match.group("batch_id")
        expected = "GET" if batch_id and not match.group("cancel") else "POST"
        if method != expected:
            raise _Reply(405, _error_body(f"Method {method} not allowed", "invalid_request_error", None))
        if batch_id is None:
            return 200, self._create_batch(raw_body, match.group("prefix")), {}
        with self._lock:
            stored = self._batches.get(batch_id)
        if stored is None:
            raise _Reply(404, _error_body(f"No batch found with id '{batch_id}'.", "invalid_request_error", None, "id"))
        with self._batch_progress:
            if match.group("cancel"):
                self._cancel(stored)
            else:
                self._advance(stored)
            with self._lock:
                return 200, copy.deepcopy(stored["object"]), {}

    def _create_batch(self, raw_body: bytes, prefix: str) -> dict[str, Any]:
        try:
            request = json.loads(raw_body or b"null")
        except ValueError as exc:
            raise _Reply(400, _error_body(f"Invalid JSON body: {exc}", "invalid_request_error", None)) from None
        if not isinstance(request, dict):
            raise _Reply(400, _error_body("The body must be a JSON object", "invalid_request_error", None))
        input_file_id, endpoint = request.get("input_file_id"), request.get("endpoint")
        with self._lock:
            stored_file = self._files.get(input_file_id) if isinstance(input_file_id, str) else None
        if stored_file is None or stored_file["object"]["purpose"] != "batch":
            raise _Reply(400, _error_body(f"Invalid input_file_id {input_file_id!r}: no file uploaded with purpose batch.",
                                          "invalid_request_error", None, "input_file_id"))
        if endpoint not in _BATCH_ENDPOINTS[prefix]:
            raise _Reply(400, _error_body(f"Unsupported endpoint {endpoint!r}; expected one of "
                                          f"{sorted(_BATCH_ENDPOINTS[prefix])}", "invalid_request_error", None, "endpoint"))
        if request.get("completion_window") != "24h":
            raise _Reply(400, _error_body("completion_window must be '24h'", "invalid_request_error", None,
                                          "completion_window"))
        metadata = request.get("metadata")
        if metadata is not None and not (isinstance(metadata, dict) and len(metadata) <= 16 and all(
                isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512 for k, v in metadata.items())):
            raise _Reply(400, _error_body("metadata must map at most 16 keys (≤ 64 chars) to strings (≤ 512 chars)",
                                          "invalid_request_error", None, "metadata"))
        now = int(time.time())
        batch = {
            "id": f"batch_{uuid.uuid4().hex[:24]}", "object": "batch", "endpoint": endpoint, "errors": None,
            "input_file_id": input_file_id, "completion_window": "24h", "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
            "expires_at": now + 24 * 3600, "finalizing_at": None, "completed_at": None, "failed_at": None,
            "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": metadata,
        }
        with self._lock:
            outcome = self._batch_outcomes.popleft() if self._batch_outcomes else "complete"
            self._batches[batch["id"]] = {"object": batch, "outcome": outcome, "lines": []}
            self._batches_created += 1
            return copy.deepcopy(batch)

    def _cancel(self, stored: dict[str, Any]) -> None:
        batch = stored["object"]
        if batch["status"] in BATCH_TERMINAL_STATUSES or batch["status"] == "cancelling":
            raise _Reply(400, _error_body(f"Cannot cancel a batch with status {batch['status']}.",
                                          "invalid_request_error", None))
        with self._lock:
            batch.update(status="cancelling", cancelling_at=int(time.time()))

    def _advance(self, stored: dict[str, Any]) -> None:
        """Move a batch one step on: validate its input, then run its lines as its outcome says."""
        batch, outcome = stored["object"], stored["outcome"]
        if batch["status"] == "validating":
            with self._lock:
                content = self._files[batch["input_file_id"]]["content"]
            lines, errors = _batch_input(content, batch["endpoint"])
            if not errors and outcome == "fail":
                errors = [_batch_error("invalid_request", "The batch failed (injected fault).")]
            with self._lock:
                if errors:
                    batch.update(status="failed", failed_at=int(time.time()), errors={"object": "list", "data": errors})
                else:
                    stored["lines"] = lines
                    batch.update(status="in_progress", in_progress_at=int(time.time()),
                                 request_counts={"total": len(lines), "completed": 0, "failed": 0})
        elif batch["status"] == "in_progress" and outcome != "stuck":
            lines = stored["lines"]
            ran = len(lines) if outcome == "complete" else int(outcome.partition(":")[2] or 0)
            status = "completed" if outcome == "complete" else "expired"
            self._finish(stored, lines[:ran], lines[ran:], status)
        elif batch["status"] == "cancelling":
            self._finish(stored, [], stored["lines"], "cancelled")

    def _finish(self, stored: dict[str, Any], run: list[dict[str, Any]], left: list[dict[str, Any]], status: str) -> None:
        """Run `run` through the responder, report `left` as never run, and write the output and error files."""
        batch = stored["object"]
        outputs: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for line in run:
            with self._lock:
                fault = self._batch_line_faults.popleft() if self._batch_line_faults else "ok"
                if fault != "unfinished":
                    self._batch_lines += 1
            if fault == "unfinished":
                continue
            if fault == "foreign":
                line = {**line, "custom_id": f"{line['custom_id']}-foreign"}
            answered = self._batch_line_answer(line, fault)
            (outputs if answered["response"]["status_code"] == 200 else errors).append(answered)
        code = "batch_expired" if status == "expired" else "batch_cancelled"
        for line in left:
            errors.append({"id": f"batch_req_{uuid.uuid4().hex[:24]}", "custom_id": line["custom_id"], "response": None,
                           "error": {"code": code, "message": f"The request was not run before the batch was {status}."}})
        output_file = self._store_file(f"{batch['id']}_output.jsonl", self._jsonl(outputs), "batch_output") if outputs else None
        error_file = self._store_file(f"{batch['id']}_error.jsonl", self._jsonl(errors), "batch_output") if errors else None
        with self._lock:
            batch.update({"status": status, f"{status}_at": int(time.time()),
                          "output_file_id": output_file["id"] if output_file else None,
                          "error_file_id": error_file["id"] if error_file else None,
                          "request_counts": {"total": len(stored["lines"]), "completed": len(outputs),
                                             "failed": len(errors)}})

    def _batch_line_answer(self, line: dict[str, Any], fault: str) -> dict[str, Any]:
        """One output (or error) file line: the chat.completion the realtime path would have answered."""
        request_id = f"req_{uuid.uuid4().hex}"
        if fault == "500":
            response = {"status_code": 500, "request_id": request_id,
                        "body": _error_body("The server had an error while processing your request.", "server_error", None)}
        else:
            try:
                response = {"status_code": 200, "request_id": request_id,
                            "body": self._answer(line["body"], line["body"]["model"], fault)}
            except _ResponderFailed as failure:
                response = {"status_code": 500, "request_id": request_id, "body": failure.body}
        return {"id": f"batch_req_{uuid.uuid4().hex[:24]}", "custom_id": line["custom_id"], "response": response,
                "error": None}

    def _jsonl(self, lines: list[dict[str, Any]]) -> bytes:
        """JSON lines in shuffled order: never the given order, when there are two lines or more."""
        order = list(lines)
        with self._lock:
            self._batch_rng.shuffle(order)
        if len(order) > 1 and order == lines:
            order = order[1:] + order[:1]
        return b"".join(json.dumps(line).encode() + b"\n" for line in order)

    def _check_auth(self, headers: Mapping[str, str], *, azure: bool) -> None:
        authorization = headers.get("authorization", "")
        bearer = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        candidates = [bearer, headers.get("api-key", "")] if azure else [bearer]
        expected = self._api_key
        if any(c and (expected is None or c == expected) for c in candidates):
            return
        if azure:
            raise _Reply(
                401,
                {
                    "error": {
                        "code": "401",
                        "message": "Access denied due to invalid subscription key or wrong API endpoint. "
                        "Make sure to provide a valid key for an active subscription and use a correct "
                        "regional API endpoint for your resource.",
                    }
                },
            )
        shown = f"{bearer[:3]}***{bearer[-4:]}" if len(bearer) > 8 else "***"
        message = f"Incorrect API key provided: {shown}." if bearer else "You didn't provide an API key."
        raise _Reply(401, _error_body(message, "invalid_request_error", "invalid_api_key"))

    def _next_fault(self) -> str:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            if self._fault_rate > 0 and self._rng.random() < self._fault_rate:
                return self._rng.choice(self._fault_kinds)
            return "ok"

    def _admit(self, tokens: int, entry: dict[str, Any]) -> dict[str, str]:
        """Charge the sliding windows, or raise a 429 `_Reply`; returns ``x-ratelimit-*`` headers."""
        window = self._rate_window_s
        with self._lock:
            now = time.monotonic()
            while self._request_times and self._request_times[0] <= now - window:
                self._request_times.popleft()
            while self._token_charges and self._token_charges[0][0] <= now - window:
                self._token_charges.popleft()
            rpm, tpm = self._rpm_limit, self._tpm_limit
            used_tokens = sum(charge for _, charge in self._token_charges)

            waits: dict[str, float] = {}
            if rpm is not None and len(self._request_times) >= rpm:
                # the oldest len-rpm+1 admissions must expire first (never, if rpm is 0)
                excess = len(self._request_times) - rpm
                waits["rpm_limit"] = self._request_times[excess] + window - now if rpm else window
            if tpm is not None and used_tokens + tokens > tpm:
                need, freed, wait = used_tokens + tokens - tpm, 0, window
                for stamp, charge in self._token_charges:
                    freed += charge
                    if freed >= need:
                        wait = stamp + window - now
                        break
                waits["tpm_limit"] = wait

            if not waits:
                self._request_times.append(now)
                if tokens:
                    self._token_charges.append((now, tokens))
                used_tokens += tokens

            headers: dict[str, str] = {}
            if rpm is not None:
                reset = self._request_times[0] + window - now if self._request_times else 0.0
                headers |= {
                    "x-ratelimit-limit-requests": str(rpm),
                    "x-ratelimit-remaining-requests": str(max(0, rpm - len(self._request_times))),
                    "x-ratelimit-reset-requests": _go_duration(reset),
                }
            if tpm is not None:
                reset = self._token_charges[0][0] + window - now if self._token_charges else 0.0
                headers |= {
                    "x-ratelimit-limit-tokens": str(tpm),
                    "x-ratelimit-remaining-tokens": str(max(0, tpm - used_tokens)),
                    "x-ratelimit-reset-tokens": _go_duration(reset),
                }
            if not waits:
                return headers

            kind, wait = max(waits.items(), key=lambda item: item[1])
            entry["fault"] = kind
        what = "requests" if kind == "rpm_limit" else "tokens"
        retry_after = max(1, math.ceil(wait))
        raise _Reply(
            429,
            _error_body(
                f"Rate limit reached for {what} per {window:g}s window. Please try again in {retry_after}s.",
                "rate_limit_error",
                "rate_limit_exceeded",
            ),
            {"Retry-After": str(retry_after), **headers},
        )
