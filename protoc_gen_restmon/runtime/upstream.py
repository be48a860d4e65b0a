"""Calling a gRPC server with upb messages as raw bytes, and the §6 header/metadata mapping."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import grpclib.const
import grpclib.exceptions
from google.protobuf.message import DecodeError, Message
from grpclib.client import Channel, Stream
from grpclib.encoding.base import CodecBase

from protoc_gen_restmon.runtime.http import Headers, Scope
from protoc_gen_restmon.runtime.specs import Cardinality, MethodSpec
from protoc_gen_restmon.runtime.status import Code, RpcError

# http-transcoding.md §6: headers forwarded under their own name, and the prefix that
# forwards any other header as metadata (`Grpc-Metadata-Trace: x` -> `trace: x`).
FORWARDED_HEADERS = frozenset({b"authorization", b"x-api-key"})
METADATA_PREFIX = b"grpc-metadata-"
# Metadata a client may not set: HTTP/2 and gRPC's own headers (grpclib refuses them too).
RESERVED_KEYS = frozenset({"te", "content-type", "user-agent", "host"})
METADATA_KEY = re.compile(r"[0-9a-z_.\-]+")
METADATA_VALUE = re.compile(r"[ !-~]*")  # printable ASCII and space (gRPC's ASCII-Value)
# gRPC over HTTP/2: Timeout → TimeoutValue TimeoutUnit, at most 8 digits.
GRPC_TIMEOUT = re.compile(r"([0-9]{1,8})([HMSmun])")
TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}

Metadata = tuple[tuple[str, str | bytes], ...]


class RawCodec(CodecBase):
    """A grpclib codec passing message bytes through: messages are serialized by upb."""

    __content_subtype__ = "proto"

    def encode(self, message: Any, message_type: Any) -> bytes:
        return bytes(message)

    def decode(self, data: bytes, message_type: Any) -> Any:
        return data


@dataclass(frozen=True, slots=True)
class RpcMethod:
    """One RPC as the gateway calls it: its spec and the upb classes of its messages."""

    spec: MethodSpec
    request_upb: type[Message]
    response_upb: type[Message]

    @property
    def client_streaming(self) -> bool:
        return self.spec.cardinality in (Cardinality.STREAM_UNARY, Cardinality.STREAM_STREAM)

    @property
    def server_streaming(self) -> bool:
        return self.spec.cardinality in (Cardinality.UNARY_STREAM, Cardinality.STREAM_STREAM)


@dataclass(frozen=True, slots=True)
class CallContext:
    """What an HTTP request adds to its call: metadata, and a timeout in seconds (or none)."""

    metadata: Metadata = ()
    timeout: float | None = None


def build_context(scope: Scope, default_timeout: float | None, request_id: str) -> CallContext:
    """The call context of an HTTP request (http-transcoding.md §6).

    `Authorization` and `X-Api-Key` are forwarded, and `x-request-id` is the gateway's request id
    (the client's `X-Request-Id`, or one generated); `Grpc-Metadata-K: v` becomes `k: v`;
    `Grpc-Timeout: 500m` sets the timeout, else `default_timeout` applies.
    A value with CR, LF or non-ASCII characters, or a malformed timeout, is INVALID_ARGUMENT.
    """
    metadata: list[tuple[str, str | bytes]] = [
        ("x-request-id", _check_value(b"x-request-id", request_id))
    ]
    timeout = default_timeout
    for raw_name, raw_value in scope["headers"]:
        name, value = bytes(raw_name).lower(), bytes(raw_value).decode("latin-1")
        if not value and name != b"grpc-timeout":
            continue  # gRPC metadata values are never empty
        if name == b"grpc-timeout":
            timeout = decode_timeout(value)
        elif name in FORWARDED_HEADERS:
            metadata.append((name.decode("latin-1"), _check_value(name, value)))
        elif name.startswith(METADATA_PREFIX):
            entry = _metadata_entry(name[len(METADATA_PREFIX) :].decode("latin-1"), value)
            if entry is not None:
                metadata.append(entry)
    return CallContext(tuple(metadata), timeout)


def decode_timeout(value: str) -> float:
    """`Grpc-Timeout` in seconds: `1S` -> 1.0, `500m` -> 0.5; anything else is a 400."""
    match = GRPC_TIMEOUT.fullmatch(value.strip())
    if match is None:
        raise RpcError(
            Code.INVALID_ARGUMENT,
            f"Grpc-Timeout {value!r}: expected 1 to 8 digits and a unit (H, M, S, m, u, n)",
        )
    return int(match[1]) * TIMEOUT_UNITS[match[2]]


def _metadata_entry(key: str, value: str) -> tuple[str, str | bytes] | None:
    """`Grpc-Metadata-<key>` as metadata; None for a key gRPC reserves or cannot carry.

    A `-bin` key carries base64 (RFC 4648, padding optional) and is sent as its bytes;
    a value that is not base64 is skipped.
    """
    if not METADATA_KEY.fullmatch(key) or key.startswith("grpc-") or key in RESERVED_KEYS:
        return None
    if key.endswith("-bin"):
        try:
            return key, base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        except (binascii.Error, ValueError):
            return None
    return key, _check_value(b"grpc-metadata-" + key.encode(), value)


def _check_value(name: bytes, value: str) -> str:
    if not METADATA_VALUE.fullmatch(value):
        raise RpcError(
            Code.INVALID_ARGUMENT,
            f"header {name.decode('latin-1')}: only printable ASCII can be sent as metadata",
        )
    return value


def encode_response_metadata(metadata: Iterable[tuple[str, str | bytes]]) -> Headers:
    """Response initial metadata `k: v` as `Grpc-Metadata-K` headers; `-bin` values as base64."""
    headers: Headers = []
    for key, value in metadata:
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        if METADATA_VALUE.fullmatch(value):
            headers.append((METADATA_PREFIX + key.encode("latin-1"), value.encode("latin-1")))
    return headers


@dataclass(frozen=True, slots=True)
class Target:
    """`host:port` of an upstream gRPC server; `[::1]:50051` for IPv6."""

    host: str
    port: int

    @classmethod
    def parse(cls, address: str) -> Target:
        host, separator, port = address.rpartition(":")
        if not separator or not host or not port.isdigit():
            raise ValueError(f"upstream {address!r}: expected host:port")
        return cls(host.removeprefix("[").removesuffix("]"), int(port))


CARDINALITY = {
    Cardinality.UNARY_UNARY: grpclib.const.Cardinality.UNARY_UNARY,
    Cardinality.UNARY_STREAM: grpclib.const.Cardinality.UNARY_STREAM,
    Cardinality.STREAM_UNARY: grpclib.const.Cardinality.STREAM_UNARY,
    Cardinality.STREAM_STREAM: grpclib.const.Cardinality.STREAM_STREAM,
}


class UpstreamCall:
    """One call in flight: the response initial metadata, then the response messages.

    `close()` ends the call (cancelling it upstream when it has not finished) and must be
    called once the caller is done, whether it read every message or not.
    """

    def __init__(
        self, stream: Stream[Any, Any], exits: AsyncExitStack, response_class: type[Message]
    ) -> None:
        self._stream = stream
        self._exits = exits
        self._response_class = response_class
        self._finished = False
        self.headers = encode_response_metadata((stream.initial_metadata or {}).items())

    async def messages(self) -> AsyncIterator[Message]:
        """The response messages; the call's status is checked once they end."""
        while True:
            with translated_errors():
                data = await self._stream.recv_message()
                if data is None:
                    await self._stream.recv_trailing_metadata()
                    self._finished = True
                    return
            try:
                yield self._response_class.FromString(data)
            except DecodeError as err:
                raise RpcError(Code.INTERNAL, f"upstream response is not valid: {err}") from err

    async def close(self) -> None:
        """Cancel the call upstream unless it finished; its failures were already reported."""
        with contextlib.suppress(Exception):
            if not self._finished:
                await self._stream.cancel()
        with contextlib.suppress(Exception):
            await self._exits.aclose()


class Upstream:
    """A gRPC server reached over one grpclib channel, opened on first use and reused.

    A channel belongs to the event loop it was opened on; a call from another loop (a new
    `asyncio.run`) opens a fresh one.
    """

    def __init__(self, target: Target, *, connect_timeout: float = 2.0) -> None:
        self.target = target
        self.connect_timeout = connect_timeout
        self._channel: Channel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def channel(self) -> Channel:
        loop = asyncio.get_running_loop()
        if self._channel is None or self._loop is not loop:
            self._channel = Channel(self.target.host, self.target.port, codec=RawCodec())
            self._loop = loop
        try:
            await asyncio.wait_for(self._channel.__connect__(), self.connect_timeout)
        except (OSError, asyncio.TimeoutError) as err:
            raise RpcError(
                Code.UNAVAILABLE, f"upstream {self.target.host}:{self.target.port} unavailable"
            ) from err
        return self._channel

    async def call(
        self, method: RpcMethod, requests: AsyncIterator[Message], context: CallContext
    ) -> UpstreamCall:
        """Send every request message, and wait for the response's initial metadata."""
        channel = await self.channel()
        stream = channel.request(
            method.spec.grpc_path,
            CARDINALITY[method.spec.cardinality],
            bytes,
            bytes,
            timeout=context.timeout,
            metadata=context.metadata,
        )
        exits = AsyncExitStack()
        with translated_errors():
            try:
                await exits.enter_async_context(stream)
                await stream.send_request()
                async for message in requests:
                    await stream.send_message(message.SerializeToString())
                await stream.end()
                await stream.recv_initial_metadata()
            except BaseException:
                # The deadline surfaces here: the stream turns its cancellation into a timeout.
                await exits.aclose()
                raise
        return UpstreamCall(stream, exits, method.response_upb)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """Upstream failures as RpcError: its status, DEADLINE_EXCEEDED, or UNAVAILABLE."""
    try:
        yield
    except grpclib.exceptions.GRPCError as err:
        raise from_grpc(err) from None
    except asyncio.TimeoutError as err:  # before OSError: TimeoutError is one since 3.11
        raise RpcError(Code.DEADLINE_EXCEEDED, "upstream deadline exceeded") from err
    except (OSError, grpclib.exceptions.StreamTerminatedError) as err:
        raise RpcError(Code.UNAVAILABLE, f"upstream connection failed: {err}") from err


def from_grpc(err: grpclib.exceptions.GRPCError) -> RpcError:
    code = Code(err.status.value)
    return RpcError(code, err.message or code.name)
