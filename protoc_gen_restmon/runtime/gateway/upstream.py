"""Calling a gRPC server with upb messages as raw bytes, and the header/metadata mapping
(docs/http-transcoding.md §6)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import re
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import grpclib.const
import grpclib.exceptions
import h2.exceptions
from google.protobuf.message import DecodeError, Message
from grpclib.client import Channel, Stream
from grpclib.config import Configuration
from grpclib.encoding.base import CodecBase, StatusDetailsCodecBase

from protoc_gen_restmon.runtime.errors import ConfigError
from protoc_gen_restmon.runtime.gateway.http import Headers, Scope
from protoc_gen_restmon.runtime.grpclib_private import connect, keepalive, stale_connection
from protoc_gen_restmon.runtime.specs import Cardinality, MethodSpec
from protoc_gen_restmon.runtime.status import Code, RpcError, detail_json, status_details

# docs/http-transcoding.md §6: headers forwarded under their own name, and the prefix that
# forwards any other header as metadata (`Grpc-Metadata-Trace: x` -> `trace: x`).
FORWARDED_HEADERS = frozenset({b"authorization", b"x-api-key"})
METADATA_PREFIX = b"grpc-metadata-"
# The peer's address is appended to this header (a proxy chain, RFC 7239's predecessor).
FORWARDED_FOR = b"x-forwarded-for"
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


class JsonStatusDetails(StatusDetailsCodecBase):
    """Reads `grpc-status-details-bin` (a google.rpc.Status) into its details as proto3 JSON,
    ready for the error body; the gateway never sends details, it only relays them."""

    def encode(self, status: Any, message: str | None, details: Any) -> bytes:
        raise NotImplementedError("the gateway does not send status details")

    def decode(self, status: Any, message: str | None, data: bytes) -> Any:
        return list(status_details(data))


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
class CallOptions:
    """What an HTTP request adds to its call: metadata, and a timeout in seconds (or none)."""

    metadata: Metadata = ()
    timeout: float | None = None


def build_call_options(
    scope: Scope,
    default_timeout: float | None,
    request_id: str,
    forward: frozenset[bytes] = frozenset(),
) -> CallOptions:
    """The call options of an HTTP request (docs/http-transcoding.md §6).

    `Authorization`, `X-Api-Key` and the headers named in `forward` (lower case) are forwarded
    under their own name, and `x-request-id` is the gateway's request id (the client's
    `X-Request-Id`, or one generated); `x-forwarded-for` is the incoming `X-Forwarded-For`
    with the HTTP client's address appended; `Grpc-Metadata-K: v` becomes `k: v`;
    `Grpc-Timeout: 500m` sets the timeout, else `default_timeout` applies.
    A value with CR, LF or non-ASCII characters, or a malformed timeout, is INVALID_ARGUMENT.
    """
    metadata: list[tuple[str, str | bytes]] = [
        ("x-request-id", _check_value(b"x-request-id", request_id))
    ]
    timeout = default_timeout
    forwarded_for: list[str] = []
    for raw_name, raw_value in scope["headers"]:
        name, value = bytes(raw_name).lower(), bytes(raw_value).decode("latin-1")
        if name == b"grpc-timeout":
            timeout = decode_timeout(value)
        elif not value:
            continue  # gRPC metadata values are never empty
        elif name == FORWARDED_FOR:
            forwarded_for.append(_check_value(name, value.strip()))
        elif name in FORWARDED_HEADERS or name in forward:
            metadata.append((name.decode("latin-1"), _check_value(name, value)))
        elif name.startswith(METADATA_PREFIX):
            entry = _metadata_entry(name[len(METADATA_PREFIX) :].decode("latin-1"), value)
            if entry is not None:
                metadata.append(entry)
    client = scope.get("client")
    if client and client[0]:
        forwarded_for.append(_check_value(FORWARDED_FOR, str(client[0])))
    if forwarded_for:
        metadata.append((FORWARDED_FOR.decode(), ", ".join(forwarded_for)))
    return CallOptions(tuple(metadata), timeout)


def forwarded_names(names: Iterable[str]) -> frozenset[bytes]:
    """`GatewayOptions.forward_headers` as lower-case header names; a name gRPC cannot carry
    as a metadata key (reserved, `grpc-…`, binary `-bin`) is a ValueError at start-up."""
    checked: set[bytes] = set()
    for name in names:
        key = name.strip().lower()
        if (
            not METADATA_KEY.fullmatch(key)
            or key.startswith("grpc-")
            or key.endswith("-bin")
            or key in RESERVED_KEYS
        ):
            raise ConfigError(f"forward_headers: {name!r} cannot be sent as gRPC metadata")
        checked.add(key.encode("ascii"))
    return frozenset(checked)


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
            raise ConfigError(f"upstream {address!r}: expected host:port")
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

    def __init__(self, stream: Stream[Any, Any], response_class: type[Message]) -> None:
        self._stream = stream
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
            await self._stream.__aexit__(None, None, None)


class Upstream:
    """A gRPC server reached over one grpclib channel, opened on first use and reused.

    A channel belongs to the event loop it was opened on; a call from another loop (a new
    `asyncio.run`) opens a fresh one. A connection the server closed (a restart, a GOAWAY) is
    replaced before the next call (`stale_connection`); one that went silent is noticed by
    `keepalive`.

    `tls`: None or False for plain HTTP/2; True for TLS with the system's CAs; an
    `ssl.SSLContext` for a private CA or a client certificate (its ALPN must offer `h2`).
    `keepalive`: ping the connection every so many seconds, and drop it when a ping is not
    answered within `connect_timeout` (see `keepalive_config`).
    """

    def __init__(
        self,
        target: Target,
        *,
        connect_timeout: float = 2.0,
        tls: bool | ssl.SSLContext | None = None,
        keepalive: float | None = None,
    ) -> None:
        self.target = target
        self.connect_timeout = connect_timeout
        self.tls = tls or None
        self.config = keepalive_config(keepalive, connect_timeout)
        self._channel: Channel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def channel(self) -> Channel:
        loop = asyncio.get_running_loop()
        if self._channel is not None and self._loop is loop and stale_connection(self._channel):
            self.close()
        if self._channel is None or self._loop is not loop:
            self._channel = Channel(
                self.target.host,
                self.target.port,
                codec=RawCodec(),
                status_details_codec=JsonStatusDetails(),
                ssl=self.tls,
                config=self.config,
            )
            self._loop = loop
        try:
            await asyncio.wait_for(connect(self._channel), self.connect_timeout)
        except (OSError, asyncio.TimeoutError) as err:
            raise RpcError(
                Code.UNAVAILABLE,
                f"upstream {self.target.host}:{self.target.port} unavailable: {_reason(err)}",
            ) from err
        return self._channel

    async def call(
        self, method: RpcMethod, requests: AsyncIterator[Message], options: CallOptions
    ) -> UpstreamCall:
        """Send every request message as it comes, and wait for the response's initial metadata.

        A failed call is never retried: it may have reached the server. A connection known to
        be gone is replaced before the call starts (`stale_connection`).
        """
        channel = await self.channel()
        stream = channel.request(
            method.spec.grpc_path,
            CARDINALITY[method.spec.cardinality],
            bytes,
            bytes,
            timeout=options.timeout,
            metadata=options.metadata,
        )
        with translated_errors():
            try:
                await stream.__aenter__()
                await stream.send_request()
                async for message in requests:
                    await stream.send_message(message.SerializeToString())
                await stream.end()
                await stream.recv_initial_metadata()
            except BaseException as err:
                # The deadline surfaces here: the stream turns its cancellation into a timeout.
                await _abandon(stream, err)
                raise
        return UpstreamCall(stream, method.response_upb)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None


def keepalive_config(interval: float | None, timeout: float) -> Configuration:
    """grpclib's HTTP/2 keepalive: a PING every `interval` seconds, busy or idle, the
    connection closed when one is not acknowledged within `timeout`.

    A server that vanished without closing its connections (a frozen host, a partition, a
    process stopped but still holding its sockets) sends no FIN and no GOAWAY: without pings,
    calls sent on its connection wait for their deadline. grpclib keeps these settings
    underscored (experimental: grpclib_private.keepalive); servers limit pings (grpc-core
    answers frequent pings without calls with GOAWAY `too_many_pings`, which only makes the
    gateway reconnect).
    """
    if interval is None:
        return Configuration()
    return keepalive(interval, timeout)


async def _abandon(stream: Stream[Any, Any], error: BaseException) -> None:
    """Leave a call that failed, or was cancelled, before its answer: the stream's exit, told of
    the error, resets the HTTP/2 stream (the server sees its call cancelled). Told nothing, it
    would wait for the server to finish instead."""
    await stream.__aexit__(type(error), error, error.__traceback__)


def _reason(err: BaseException) -> str:
    if isinstance(err, asyncio.TimeoutError):
        return "connect timed out"
    return str(err) or type(err).__name__


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """Upstream failures as RpcError: its status, DEADLINE_EXCEEDED, or UNAVAILABLE."""
    try:
        yield
    except grpclib.exceptions.GRPCError as err:
        raise from_grpc(err) from None
    except asyncio.TimeoutError as err:  # before OSError: TimeoutError is one since 3.11
        raise RpcError(Code.DEADLINE_EXCEEDED, "upstream deadline exceeded") from err
    except (
        OSError,
        grpclib.exceptions.StreamTerminatedError,
        h2.exceptions.ProtocolError,  # a stream opened on a connection h2 knows is closed
    ) as err:
        raise RpcError(Code.UNAVAILABLE, f"upstream connection failed: {err}") from err


def from_grpc(err: grpclib.exceptions.GRPCError) -> RpcError:
    """A grpclib status as RpcError; details are JSON already (`JsonStatusDetails`) or, raised
    by an in-process handler, google.rpc messages."""
    code = Code(err.status.value)
    details = tuple(_detail(detail) for detail in err.details or ())
    return RpcError(code, err.message or code.name, details=details)


def _detail(detail: Any) -> Any:
    return detail_json(detail) if isinstance(detail, Message) else detail
