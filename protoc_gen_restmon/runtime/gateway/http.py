"""ASGI plumbing for the gateway: reading a bounded body, writing JSON and google.rpc.Status,
and noticing a client that went away."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal, TypeVar

from protoc_gen_restmon.runtime.status import Code, RpcError, http_status_for

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON = b"application/json"
NDJSON = b"application/x-ndjson"
EVENT_STREAM = b"text/event-stream"

# How error bodies are written (docs/http-transcoding.md §5): "status", a bare google.rpc.Status;
# "google", AIP-193's `{"error": {"code": <HTTP status>, "message", "status", "details"}}`, which
# Google's generated REST clients read (google-api-core's `format_http_response_error` takes
# `error.message` and `error.details`; the exception class comes from the HTTP status).
ErrorFormat = Literal["status", "google"]
ERROR_FORMATS: tuple[ErrorFormat, ...] = ("status", "google")

# Written when even the error body cannot be produced (grpc-gateway keeps the same fallback).
FALLBACK_ERROR = b'{"code":13,"message":"failed to marshal error message","details":[]}'
GOOGLE_FALLBACK_ERROR = (
    b'{"error":{"code":500,"message":"failed to marshal error message",'
    b'"status":"INTERNAL","details":[]}}'
)


T = TypeVar("T")

# An ASGI extension (scope["extensions"]) of restmon's own HTTP server protocols
# (runtime/connections.py): `register(callback)` has the server call `callback()` when the
# connection is lost before this request's response is complete (at once if it already is).
# It spares a watcher task per request; other servers go without it (see Exchange).
ON_DISCONNECT = "restmon.on_disconnect"
OnDisconnect = Callable[[Callable[[], None]], None]


class ClientDisconnected(Exception):
    """The HTTP client went away before the response was complete."""


class Exchange:
    """One request's `receive` and `send`, watched for the client going away.

    Once the request body has been read, `receive()` has nothing left to give but
    `http.disconnect`: while `run` awaits the work, a watcher task waits for it and cancels
    the request's task when it comes before the response was complete (an upstream call is
    then cancelled upstream). A `send` that fails because the connection is gone is
    `ClientDisconnected` too.

    The watcher is started by the event loop (`call_soon`) once the body has been read, so
    work that answers without ever yielding to the loop (an in-process handler that awaits
    nothing) finishes before it starts and costs no task at all: the callback is cancelled.
    (One watcher task, not a task for the work and `asyncio.wait`: that costs five times as
    much per request.) Where the server offers `on_disconnect` (ON_DISCONNECT, restmon's own
    protocols), it tells of the client going instead, and no request costs a watcher.
    """

    __slots__ = ("_gone", "_on_disconnect", "_read", "_receive", "_responded", "_send",
                 "_start", "_task", "_watcher")  # fmt: skip

    def __init__(
        self, receive: Receive, send: Send, on_disconnect: OnDisconnect | None = None
    ) -> None:
        self._receive = receive
        self._send = send
        self._on_disconnect = on_disconnect
        self._task: asyncio.Task[Any] | None = None  # the task `run` awaits the work in
        self._start: asyncio.Handle | None = None  # the watcher's start, scheduled
        self._watcher: asyncio.Task[None] | None = None
        self._read = False  # the whole body
        self._responded = False
        self._gone = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self._body_read()
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self._responded = True
        try:
            await self._send(message)
        except OSError as err:  # uvicorn's ClientDisconnected is one
            raise ClientDisconnected from err

    async def run(self, work: Awaitable[T]) -> T:
        """`await work`, cancelled (raising ClientDisconnected) if the client goes away first."""
        task = self._task = asyncio.current_task()
        assert task is not None, "Exchange.run outside a task"
        if self._on_disconnect is not None:
            self._on_disconnect(self._client_gone)
        elif self._read:
            self._schedule_watcher()
        try:
            return await work
        except asyncio.CancelledError:
            if self._gone:
                raise ClientDisconnected from None
            raise
        finally:
            self._task = None
            # Cancelled and forgotten: the scheduled start holds a bound method of this
            # exchange and the cancelled watcher's CancelledError holds its frame (which holds
            # this exchange); kept here, either would make a reference cycle of every request,
            # its uvicorn cycle and frames included, left to the garbage collector (about a
            # tenth of the gateway's CPU under load in benchmarks/RESULTS.md).
            if self._start is not None:
                self._start.cancel()
                self._start = None
            if self._watcher is not None:
                self._watcher.cancel()
                self._watcher = None
            if self._gone and hasattr(task, "uncancel"):  # Python 3.11+ counts cancellations
                task.uncancel()

    def _body_read(self) -> None:
        self._read = True
        if self._task is not None and self._on_disconnect is None:
            self._schedule_watcher()

    def _client_gone(self) -> None:
        """The server's word that the client went: as the watcher's http.disconnect (before
        the body is read, reading it tells the reader)."""
        task = self._task
        if task is not None and self._read and not self._responded:
            self._gone = True
            task.cancel()

    def _schedule_watcher(self) -> None:
        if self._start is None and self._task is not None:
            # The task's loop, not asyncio.get_running_loop(): a getpid() on Python ≤ 3.11.
            self._start = self._task.get_loop().call_soon(self._start_watcher)

    def _start_watcher(self) -> None:
        task = self._task
        if task is not None and not self._responded:
            # The loop's create_task, not asyncio.ensure_future: that is the same task after a
            # detour through Python-level type checks and the loop's lookup, on every request.
            self._watcher = task.get_loop().create_task(self._watch(task))

    async def _watch(self, task: asyncio.Task[Any]) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            continue
        # Servers also report a disconnect once the response is complete: nothing to cancel.
        if not self._responded:
            self._gone = True
            task.cancel()


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (name in lower case), decoded as latin-1."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def wants_event_stream(accept: str | None) -> bool:
    """Whether `Accept` prefers Server-Sent Events to NDJSON, the other stream format we write:
    `text/event-stream` with a quality above 0 and not below that of `application/x-ndjson`
    (RFC 9110 §12.5.1 qualities).

    >>> wants_event_stream("text/event-stream"), wants_event_stream("text/event-stream;q=0")
    (True, False)
    """
    if not accept:
        return False
    qualities: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        qualities[media.lower()] = max(quality, qualities.get(media.lower(), 0.0))
    sse = qualities.get(EVENT_STREAM.decode(), 0.0)
    return sse > 0 and sse >= qualities.get(NDJSON.decode(), 0.0)


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; more than `limit` bytes is a 413 (docs/http-transcoding.md §3)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            # RESOURCE_EXHAUSTED, as transcode.check_body_size and gRPC's own receive limit.
            raise RpcError(
                Code.RESOURCE_EXHAUSTED,
                f"request body exceeds the limit of {limit} bytes",
                http_status=413,
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def status_json(code: int, message: str, details: list[Any] | None = None) -> bytes:
    """A google.rpc.Status in proto3 JSON."""
    body = {"code": int(code), "message": message, "details": details or []}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def google_error_json(
    code: int, message: str, details: list[Any] | None = None, http_status: int | None = None
) -> bytes:
    """AIP-193: `{"error": {"code": 404, "message": …, "status": "NOT_FOUND", "details": […]}}`.

    `code` is the gRPC code (its name is `status`; a code outside google.rpc.Code is UNKNOWN),
    `http_status` the response's status (by default the one §5's table gives the code).
    """
    error = {
        "code": http_status if http_status is not None else http_status_for(code),
        "message": message,
        "status": code_name(code),
        "details": details or [],
    }
    return json.dumps({"error": error}, separators=(",", ":"), ensure_ascii=False).encode()


def code_name(code: int) -> str:
    """`5` -> "NOT_FOUND"; a code outside google.rpc.Code is "UNKNOWN"."""
    try:
        return Code(code).name
    except ValueError:
        return Code.UNKNOWN.name


def error_json(error: RpcError, error_format: ErrorFormat = "status") -> bytes:
    """The body of an error response, in `error_format`."""
    details = list(error.details)
    try:
        if error_format == "google":
            return google_error_json(error.code, error.message, details, error.http_status)
        return status_json(error.code, error.message, details)
    except (TypeError, ValueError):
        return GOOGLE_FALLBACK_ERROR if error_format == "google" else FALLBACK_ERROR


def stream_error_json(error: RpcError, error_format: ErrorFormat = "status") -> bytes:
    """The final line of a stream that failed after its first message: `{"error": <Status>}`,
    or the AIP-193 body, which already is `{"error": {…}}`."""
    body = error_json(error, error_format)
    return body if error_format == "google" else b'{"error":' + body + b"}"


async def start(send: Send, status: int, content_type: bytes, headers: Headers) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), *headers],
        }
    )


async def respond(
    send: Send, status: int, body: bytes, headers: Headers, content_type: bytes = JSON
) -> None:
    """A whole response: the two messages ASGI needs, the header list built once."""
    length = (b"content-length", b"%d" % len(body))
    headers = [(b"content-type", content_type), *headers, length]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def respond_error(
    send: Send, error: RpcError, headers: Headers, error_format: ErrorFormat = "status"
) -> None:
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers]
    challenged = any(k.lower() == b"www-authenticate" for k, _ in extra)
    if error.code == Code.UNAUTHENTICATED and not challenged:
        extra.append((b"www-authenticate", b'Bearer realm="restmon"'))
    body = error_json(error, error_format)
    await respond(send, error.http_status, body, [*headers, *extra])


def raw_path(scope: Scope) -> str:
    """The request path below the app's mount point, still percent-encoded.

    Servers and routers put the whole path in `path` and `raw_path`, and the mount point
    (decoded) in `root_path` (ASGI spec; uvicorn `--root-path`, Starlette `Mount("/api", …)`):
    `/api/v1/shelves/a%2Fb` under `root_path="/api"` is `/v1/shelves/a%2Fb`. A path that does
    not start with `root_path` (a server that already removed it) is taken as it is.
    """
    root = str(scope.get("root_path", ""))
    raw = scope.get("raw_path")
    if not raw:
        return _below(str(scope["path"]), root, str)
    return _below(bytes(raw).split(b"?", 1)[0].decode("latin-1"), root, _percent_decode)


def _below(path: str, root: str, decode: Callable[[str], str]) -> str:
    """`path` without its leading segments that `decode` to `root`; unchanged when none do."""
    if not root or root == "/":
        return path
    # An escape is 3 characters for 1: the prefix is `len(root)` to `3 * len(root)` long.
    for end in range(len(root), min(len(path), 3 * len(root)) + 1):
        if (end == len(path) or path[end] == "/") and decode(path[:end]) == root:
            return path[end:] or "/"
    return path


def _percent_decode(raw: str) -> str:
    return urllib.parse.unquote(raw.encode("latin-1").decode("utf-8", "replace"))


async def serve_lifespan(
    receive: Receive, send: Send, on_shutdown: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Answer an ASGI lifespan protocol: nothing to start; `await on_shutdown()` before
    completing it."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if on_shutdown is not None:
                await on_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
