"""The upstream gRPC server of proxy mode: the one grpcio channel (`grpc.aio`, C-core) that
reaches it, calls on it with upb messages as raw bytes, and the header/metadata mapping
(docs/http-transcoding.md §6)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import re
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import grpc.aio  # type: ignore[import-untyped]
from google.protobuf.descriptor_pb2 import MethodOptions
from google.protobuf.message import DecodeError, Message

from protoc_gen_restmon.runtime.errors import ConfigError
from protoc_gen_restmon.runtime.gateway.http import Headers, Scope
from protoc_gen_restmon.runtime.specs import Cardinality, MethodSpec
from protoc_gen_restmon.runtime.status import Code, RpcError, status_details

# docs/http-transcoding.md §6: headers forwarded under their own name, and the prefix that
# forwards any other header as metadata (`Grpc-Metadata-Trace: x` -> `trace: x`).
FORWARDED_HEADERS = frozenset({b"authorization", b"x-api-key"})
METADATA_PREFIX = b"grpc-metadata-"
# The peer's address is appended to this header (a proxy chain, RFC 7239's predecessor).
FORWARDED_FOR = b"x-forwarded-for"
# Metadata a client may not set: HTTP/2 and gRPC's own headers (grpcio refuses them too).
RESERVED_KEYS = frozenset({"te", "content-type", "user-agent", "host"})
METADATA_KEY = re.compile(r"[0-9a-z_.\-]+")
METADATA_VALUE = re.compile(r"[ !-~]*")  # printable ASCII and space (gRPC's ASCII-Value)
# The request headers `build_call_options` reads, besides those starting with METADATA_PREFIX
# and those it is asked to forward.
OPTION_HEADERS = frozenset({b"grpc-timeout", FORWARDED_FOR, *FORWARDED_HEADERS})
# gRPC over HTTP/2: Timeout → TimeoutValue TimeoutUnit, at most 8 digits.
GRPC_TIMEOUT = re.compile(r"([0-9]{1,8})([HMSmun])")
TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}

Metadata = tuple[tuple[str, str | bytes], ...]


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
        name = bytes(raw_name).lower()
        if not (name in OPTION_HEADERS or name in forward or name.startswith(METADATA_PREFIX)):
            continue  # most headers (host, user-agent, accept, …): not decoded at all
        value = bytes(raw_value).decode("latin-1")
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
    # METADATA_VALUE.fullmatch(value), in a tenth of the time: the printable ASCII characters
    # are those of METADATA_VALUE, space to tilde.
    if not (value.isascii() and value.isprintable()):
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


# Name-resolver schemes a target may start with (gRPC's naming doc); anything else is host:port.
TARGET_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:")
LOAD_BALANCING = ("round_robin", "pick_first")
# Who makes the calls: grpcio's channel (C-core, on its own thread; every feature below), or
# an HTTP/2 client on the gateway's event loop (`loop_upstream`: one address, lower latency);
# auto: asyncio where it can serve the options (`chosen_transport`), else grpcio.
TRANSPORTS = ("auto", "grpcio", "asyncio")
# How long a failed replica waits before C-core connects to it again: from INITIAL, times 1.6
# per failure, at most MAX (C-core's defaults, 1 s and 120 s, leave a restarted replica
# unused for up to two minutes).
INITIAL_RECONNECT_BACKOFF_MS = 250
MAX_RECONNECT_BACKOFF_MS = 5_000
STREAM_WINDOW = 1024 * 1024  # bytes of one response stream C-core may read ahead


@dataclass(frozen=True, slots=True)
class Target:
    """Where the upstream is, as a gRPC target (gRPC's naming doc): `host:port` (`[::1]:50051`
    for IPv6), or a name-resolver URI: `dns:///host:port` (every address the name resolves
    to), `ipv4:10.0.0.1:50051,10.0.0.2:50051`, `ipv6:[::1]:50051`, `unix:/run/grpc.sock`."""

    name: str

    @classmethod
    def parse(cls, address: str) -> Target:
        scheme, _, rest = address.partition(":")
        if address.startswith(TARGET_SCHEMES):
            if not rest.strip("/"):
                raise ConfigError(f"upstream {address!r}: {scheme}: names no address")
            return cls(address)
        host, separator, port = address.rpartition(":")
        if not separator or not host or not port.isdigit():
            raise ConfigError(
                f"upstream {address!r}: expected host:port, or a gRPC target such as "
                "dns:///host:port or ipv4:10.0.0.1:50051,10.0.0.2:50051"
            )
        return cls(address)


@dataclass(frozen=True, slots=True)
class UpstreamTls:
    """TLS to the upstream from PEM files: `ca`, the CAs to trust (None: the system's);
    `cert` and `key`, a client certificate (mutual TLS); `server_name`, the name to verify
    in the server's certificate instead of the target's host."""

    ca: str | Path | None = None
    cert: str | Path | None = None
    key: str | Path | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        """grpcio's credentials; a file that cannot be read is a ConfigError."""
        if (self.cert is None) != (self.key is None):
            raise ConfigError("upstream TLS: a client certificate needs both cert and key")
        return grpc.ssl_channel_credentials(
            root_certificates=_read_pem(self.ca) if self.ca is not None else _system_cas(),
            private_key=_read_pem(self.key) if self.key is not None else None,
            certificate_chain=_read_pem(self.cert) if self.cert is not None else None,
        )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """gRPC's retryPolicy (gRFC A6) for the idempotent methods (`idempotent`): a call that
    fails with one of `status_codes` is tried again, up to `max_attempts` times in all (2 to 5;
    C-core caps it at 5), after a random wait of at most `initial_backoff` seconds, times
    `backoff_multiplier` per attempt, at most `max_backoff`."""

    max_attempts: int = 3
    initial_backoff: float = 0.1
    max_backoff: float = 1.0
    backoff_multiplier: float = 2.0
    status_codes: tuple[str, ...] = ("UNAVAILABLE",)

    def __post_init__(self) -> None:
        if not 2 <= self.max_attempts <= 5:
            raise ConfigError(f"RetryPolicy: max_attempts {self.max_attempts} is not 2 to 5")
        unknown = [c for c in self.status_codes if c not in Code.__members__ or c == "OK"]
        if unknown or not self.status_codes:
            raise ConfigError(f"RetryPolicy: status_codes {unknown or '()'} are not error codes")
        if min(self.initial_backoff, self.max_backoff, self.backoff_multiplier) <= 0:
            raise ConfigError("RetryPolicy: backoffs and their multiplier must be positive")

    def json(self) -> dict[str, Any]:
        """The policy in the service config's JSON (durations as protobuf JSON: `0.1s`)."""
        return {
            "maxAttempts": self.max_attempts,
            "initialBackoff": _duration(self.initial_backoff),
            "maxBackoff": _duration(self.max_backoff),
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": list(self.status_codes),
        }


ChannelOption = tuple[str, int | str]


@dataclass(frozen=True, slots=True)
class UpstreamOptions:
    """Proxy mode (`Gateway(upstream=…)`): how the gateway reaches the upstream gRPC server."""

    # The timeout of a call without `Grpc-Timeout`, in seconds (None: none), and how long
    # connecting to the upstream may take before a 503.
    deadline: float | None = 30.0
    connect_timeout: float = 2.0
    # More request headers sent as metadata under their own (lower-case) name, beside
    # Authorization, X-Api-Key, X-Request-Id and X-Forwarded-For.
    forward_headers: tuple[str, ...] = ()
    # Seconds between HTTP/2 PINGs on the upstream connection (None: no pings); a ping
    # unanswered within connect_timeout drops the connection (`channel_arguments`).
    keepalive: float | None = None
    # None or False: plain HTTP/2; True: TLS verified against the system's CAs; UpstreamTls:
    # a private CA, a client certificate (mutual TLS), another server name.
    tls: bool | UpstreamTls | None = None
    # How calls spread over the addresses the target names: round_robin (each call to the
    # next ready one) or pick_first (all on the first that connects).
    load_balancing: str = "round_robin"
    # Retries of idempotent methods (None: a failed call is never retried).
    retry: RetryPolicy | None = None
    # grpcio channel arguments (`grpc.max_receive_message_length`, …), set last: they
    # override the gateway's own.
    channel_options: tuple[ChannelOption, ...] = ()
    # "auto", "grpcio" or "asyncio" (TRANSPORTS); asyncio takes no retry or channel options,
    # and reaches one host:port (or unix:path), the load_balancing setting unused.
    transport: str = "auto"

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            choices = ", ".join(TRANSPORTS)
            raise ConfigError(f"transport {self.transport!r}: not one of {choices}")
        if self.transport == "asyncio":
            if self.retry is not None or self.channel_options:
                raise ConfigError(
                    "the asyncio transport has no retries and no channel options "
                    "(grpcio's, C-core's): use the grpcio transport for them"
                )
        elif self.transport == "grpcio" and isinstance(self.tls, ssl.SSLContext):
            raise ConfigError(
                "UpstreamOptions.tls: the upstream channel is grpcio's (C-core, BoringSSL), "
                "which cannot take an ssl.SSLContext: give UpstreamTls(ca=…, cert=…, key=…)"
            )
        if self.load_balancing not in LOAD_BALANCING:
            choices = ", ".join(LOAD_BALANCING)
            raise ConfigError(f"load_balancing {self.load_balancing!r}: not one of {choices}")
        if self.connect_timeout <= 0:
            raise ConfigError(f"connect_timeout {self.connect_timeout}: must be positive")


def chosen_transport(target: Target, options: UpstreamOptions) -> str:
    """The transport that makes the calls: `options.transport`, or for auto the asyncio one
    when it can do what the options ask (one address, no retries, no channel options; its
    sequential calls take ~30 % less time, benchmarks/RESULTS.md), else grpcio's channel."""
    if options.transport != "auto":
        return options.transport
    single = not target.name.startswith(("dns:", "ipv4:", "ipv6:", "unix-abstract:"))
    if single and options.retry is None and not options.channel_options:
        return "asyncio"
    if isinstance(options.tls, ssl.SSLContext):
        raise ConfigError(
            "UpstreamOptions.tls: an ssl.SSLContext needs the asyncio transport, and this "
            "target or these options need grpcio's channel (C-core, BoringSSL): give "
            "UpstreamTls(ca=…, cert=…, key=…)"
        )
    return "grpcio"


def idempotent(method: RpcMethod) -> bool:
    """Whether a call of `method` may be sent twice: its proto says so (`idempotency_level`
    NO_SIDE_EFFECTS or IDEMPOTENT), or every HTTP binding of it is a GET. Client streams
    never are (their requests would all be buffered for the retry)."""
    if method.client_streaming:
        return False
    service, _, name = method.spec.grpc_path.strip("/").rpartition("/")
    pool = method.request_upb.DESCRIPTOR.file.pool
    with contextlib.suppress(KeyError):
        level = pool.FindMethodByName(f"{service}.{name}").GetOptions().idempotency_level
        if level != MethodOptions.IDEMPOTENCY_UNKNOWN:
            return True
    verbs = {binding.split(" ", 1)[0] for binding in method.spec.bindings}
    return verbs == {"GET"}


def service_config(options: UpstreamOptions, methods: Iterable[RpcMethod]) -> str:
    """The channel's gRPC service config: the load-balancing policy, and the retry policy of
    the idempotent methods when `options.retry` is set."""
    config: dict[str, Any] = {"loadBalancingConfig": [{options.load_balancing: {}}]}
    if options.retry is not None:
        names = [_method_name(m.spec.grpc_path) for m in methods if idempotent(m)]
        if names:
            config["methodConfig"] = [{"name": names, "retryPolicy": options.retry.json()}]
    return json.dumps(config, separators=(",", ":"))


def channel_arguments(options: UpstreamOptions, config: str) -> list[ChannelOption]:
    """The C-core channel arguments of `options`; `options.channel_options` come last."""
    connect_ms = max(100, round(options.connect_timeout * 1000))
    arguments: dict[str, int | str] = {
        # The channel's own connections, not C-core's process-wide pool: a channel opened
        # after a failure (Upstream.channel) connects at once instead of waiting out the
        # backoff of a pooled connection.
        "grpc.use_local_subchannel_pool": 1,
        # C-core's connect deadline: the larger of this and the current backoff.
        "grpc.min_reconnect_backoff_ms": connect_ms,
        "grpc.initial_reconnect_backoff_ms": INITIAL_RECONNECT_BACKOFF_MS,
        "grpc.max_reconnect_backoff_ms": MAX_RECONNECT_BACKOFF_MS,
        "grpc.max_receive_message_length": -1,  # the gateway sets no limit of its own
        # A fixed HTTP/2 receive window per stream: C-core reads a stream ahead of the HTTP
        # client up to its window, and its BDP probe grows the window with the bandwidth (to
        # 12 MB and more on loopback): per slow client, in the gateway's memory
        # (docs/proxy.md; tests/test_proxy_failures.py measures it).
        "grpc.http2.bdp_probe": 0,
        "grpc.http2.lookahead_bytes": STREAM_WINDOW,
        "grpc.enable_retries": int(options.retry is not None),
        "grpc.service_config": config,
    }
    if options.keepalive is not None:
        # A server that vanished without closing its connections (a frozen host, a
        # partition) sends no FIN and no GOAWAY: without pings, calls would wait for their
        # deadline. Servers limit pings: grpc-core answers frequent ones on an idle
        # connection with GOAWAY too_many_pings (C-core then doubles the interval).
        arguments |= {
            "grpc.keepalive_time_ms": max(1, round(options.keepalive * 1000)),
            "grpc.keepalive_timeout_ms": connect_ms,
            "grpc.keepalive_permit_without_calls": 1,
            "grpc.http2.max_pings_without_data": 0,
            # A ping in flight while a call waits is timed by this one, not the keepalive's.
            "grpc.http2.ping_timeout_ms": connect_ms,
        }
    if isinstance(options.tls, UpstreamTls) and options.tls.server_name:
        arguments["grpc.ssl_target_name_override"] = options.tls.server_name
    arguments.update(options.channel_options)
    return list(arguments.items())


def channel_credentials(tls: bool | UpstreamTls | None) -> grpc.ChannelCredentials | None:
    if not tls:
        return None
    return (UpstreamTls() if tls is True else tls).credentials()


class UpstreamCall:
    """One call in flight: the response initial metadata (`headers`), then the response
    messages. `close()` ends the call (cancelling it upstream when it has not finished) and
    must be called once the caller is done, whether it read every message or not."""

    def __init__(
        self, upstream: Upstream, call: Any, method: RpcMethod, headers: Headers, response: Any
    ) -> None:
        self._upstream = upstream
        self._call = call
        self._response_class = method.response_upb
        self._streaming = method.server_streaming
        self._response = response  # the one response of a unary call, already received
        self.headers = headers

    def messages(self) -> AsyncIterator[Message]:
        """The response messages; a stream's status is checked once they end (grpc.aio's
        `read()` raises it at the end of the stream)."""
        if not self._streaming:
            return UnaryResponse(self._decode, self._response)
        return self._stream()

    async def _stream(self) -> AsyncIterator[Message]:
        while True:
            with self._upstream.translated_errors():
                data = await self._call.read()
            if data is grpc.aio.EOF:
                return
            yield self._decode(data)

    def _decode(self, data: bytes) -> Message:
        return decode_response(self._response_class, data)

    async def close(self) -> None:
        """Cancel the call upstream unless it finished (C-core resets its HTTP/2 stream)."""
        if not self._call.done():
            self._call.cancel()


def decode_response(response_class: type[Message], data: bytes) -> Message:
    """An upstream's response message (either transport); bytes that are none are INTERNAL."""
    try:
        return response_class.FromString(data)
    except DecodeError as err:
        raise RpcError(Code.INTERNAL, f"upstream response is not valid: {err}") from err


class UnaryResponse(AsyncIterator[Message]):
    """The one response of a unary call, decoded when it is taken. Not an async generator:
    the event loop registers each of those (a WeakSet, for `shutdown_asyncgens`) on first use,
    and finalizes it."""

    __slots__ = ("_data", "_decode")

    def __init__(self, decode: Callable[[bytes], Message], data: bytes) -> None:
        self._decode = decode
        self._data: bytes | None = data

    async def __anext__(self) -> Message:
        data, self._data = self._data, None
        if data is None:
            raise StopAsyncIteration
        return self._decode(data)


class Upstream:
    """The upstream gRPC server, reached over one grpcio channel (`grpc.aio`: C-core), opened
    on first use and reused; messages go as raw bytes (no serializers on the channel).

    A channel belongs to the event loop it was opened on; a call from another loop (a new
    `asyncio.run`) opens a fresh one. C-core reconnects by itself (a restart, a GOAWAY), but a
    channel in TRANSIENT_FAILURE (every address failed) would fail calls until its backoff
    ends: the next call opens a fresh channel instead, which connects at once. `methods`: the
    RPCs the gateway calls (for the retry policy of the idempotent ones).
    """

    def __init__(
        self,
        target: Target,
        options: UpstreamOptions | None = None,
        methods: Iterable[RpcMethod] = (),
    ) -> None:
        self.target = target
        self.options = options or UpstreamOptions()
        self._credentials = channel_credentials(self.options.tls)
        self.arguments = channel_arguments(self.options, service_config(self.options, methods))
        self._channel: grpc.aio.Channel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._callables: dict[str, Any] = {}

    def channel(self) -> grpc.aio.Channel:
        """The channel for this event loop (opened now if there is none, or it is failing)."""
        loop = asyncio.get_running_loop()
        channel = self._channel
        if channel is None or self._loop is not loop or _failing(channel):
            # A failing channel is dropped, not closed: closing would cancel calls still on
            # it; grpcio closes a channel nothing refers to (Channel.__del__).
            channel = self._open()
            self._loop = loop
        return channel

    def _open(self) -> grpc.aio.Channel:
        name, arguments = self.target.name, self.arguments
        if self._credentials is None:
            channel = grpc.aio.insecure_channel(name, options=arguments)
        else:
            channel = grpc.aio.secure_channel(name, self._credentials, options=arguments)
        self._channel, self._callables = channel, {}
        return channel

    def _callable(self, method: RpcMethod) -> Any:
        """The channel's multicallable of `method`, bytes in and out (made once per channel)."""
        channel = self.channel()
        path = method.spec.grpc_path
        found = self._callables.get(path)
        if found is None:
            kind = CALLABLES[method.spec.cardinality]
            found = self._callables[path] = getattr(channel, kind)(path)
        return found

    async def call(
        self, method: RpcMethod, requests: Message | AsyncIterator[Message], options: CallOptions
    ) -> UpstreamCall:
        """Make the call: `requests` is the request of a unary or server-streaming method, or
        the async iterator of a client stream's requests, each sent as it comes. Returns once
        the response's initial metadata has come (and a unary call's response with it).

        A failed call is retried only under the retry policy (`UpstreamOptions.retry`).
        """
        multicallable = self._callable(method)
        timeout, metadata = options.timeout, options.metadata
        if isinstance(requests, Message):
            call = multicallable(requests.SerializeToString(), timeout=timeout, metadata=metadata)
        else:
            call = multicallable(timeout=timeout, metadata=metadata)
        try:
            with self.translated_errors():
                if not isinstance(requests, Message):
                    async for message in requests:
                        await call.write(message.SerializeToString())
                    await call.done_writing()
                response = None if method.server_streaming else await call
                headers = encode_response_metadata(await call.initial_metadata())
        except BaseException:
            call.cancel()  # a bad request line, the HTTP client gone: the server is told
            raise
        return UpstreamCall(self, call, method, headers, response)

    @contextlib.contextmanager
    def translated_errors(self) -> Iterator[None]:
        """A call's failure as RpcError: the upstream's status, with its details."""
        try:
            yield
        except grpc.aio.AioRpcError as err:
            raise self._error(err) from None

    def _error(self, err: grpc.aio.AioRpcError) -> RpcError:
        code = Code(err.code().value[0])
        message = err.details() or code.name
        if code == Code.DEADLINE_EXCEEDED and "Deadline Exceeded" in message:
            # C-core's words ("Deadline Exceeded", "Stream removed (Deadline Exceeded)"):
            # the deadline passed here, not an upstream answering DEADLINE_EXCEEDED.
            message = "upstream deadline exceeded"
        elif code == Code.UNAVAILABLE and not self._ready():
            # The channel failed (refused, reset, TLS), not a server answering UNAVAILABLE.
            message = f"upstream {self.target.name} unavailable: {message}"
        return RpcError(code, message, details=_details(err.trailing_metadata()))

    def _ready(self) -> bool:
        channel = self._channel
        return channel is not None and channel.get_state() is grpc.ChannelConnectivity.READY

    async def close(self) -> None:
        """Close the channel (its calls are cancelled); the next call opens a new one."""
        channel, self._channel, self._callables = self._channel, None, {}
        if channel is not None and self._loop is asyncio.get_running_loop():
            await channel.close()


CALLABLES = {
    Cardinality.UNARY_UNARY: "unary_unary",
    Cardinality.UNARY_STREAM: "unary_stream",
    Cardinality.STREAM_UNARY: "stream_unary",
    Cardinality.STREAM_STREAM: "stream_stream",
}


def _failing(channel: grpc.aio.Channel) -> bool:
    return channel.get_state() is grpc.ChannelConnectivity.TRANSIENT_FAILURE


def _details(trailers: Any) -> tuple[Any, ...]:
    """The details of `grpc-status-details-bin` (a google.rpc.Status) as proto3 JSON."""
    for key, value in trailers or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return tuple(status_details(value))
    return ()


def _duration(seconds: float) -> str:
    """Seconds as a google.protobuf.Duration in JSON, nanosecond precision: 0.05 -> "0.05s"."""
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def _method_name(grpc_path: str) -> dict[str, str]:
    service, _, method = grpc_path.strip("/").rpartition("/")
    return {"service": service, "method": method}


def _read_pem(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ConfigError(f"upstream TLS: {err}") from err


def _system_cas() -> bytes | None:
    """The system's CA bundle (OpenSSL's default file), or None for grpcio's own roots."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return _read_pem(candidate)
    return None
