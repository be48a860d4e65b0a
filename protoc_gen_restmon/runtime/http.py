"""ASGI plumbing for the gateway: reading a bounded body, writing JSON and google.rpc.Status."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from protoc_gen_restmon.runtime.status import Code, RpcError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON = b"application/json"
NDJSON = b"application/x-ndjson"
EVENT_STREAM = b"text/event-stream"

# Written when even the error body cannot be produced (grpc-gateway keeps the same fallback).
FALLBACK_ERROR = b'{"code":13,"message":"failed to marshal error message","details":[]}'


class ClientDisconnected(Exception):
    """The HTTP client went away before the request body was read."""


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
    """The whole request body; more than `limit` bytes is a 413 (http-transcoding.md §3)."""
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
    await start(send, status, content_type, [*headers, (b"content-length", b"%d" % len(body))])
    await send({"type": "http.response.body", "body": body})


async def respond_error(send: Send, error: RpcError, headers: Headers) -> None:
    extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in error.headers]
    if error.code == Code.UNAUTHENTICATED and not any(k == b"www-authenticate" for k, _ in extra):
        extra.append((b"www-authenticate", b'Bearer realm="restmon"'))
    try:
        body = status_json(error.code, error.message, list(error.details))
    except (TypeError, ValueError):
        body = FALLBACK_ERROR
    await respond(send, error.status, body, [*headers, *extra])
