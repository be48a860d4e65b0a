"""The upstream of proxy mode over gRPC's HTTP/2 on the gateway's own event loop
(`UpstreamOptions(transport="asyncio")`, `restmon serve --upstream-transport asyncio`).

grpcio's channel (`upstream.Upstream`) runs C-core on its own poller thread: every completion
crosses from that thread to the event loop and back, which is most of a sequential call's
latency (benchmarks/RESULTS.md, proxy_vs_grpc_gateway). Here the connection is an asyncio
protocol (`loop_connection`) around `h2wire.H2ClientConnection` (sans I/O): a call's bytes go
out and its answer is read on the loop that serves the HTTP request, with no thread between.

What it keeps of grpcio's channel: one connection reused by every call, reconnect on next use
after a close or GOAWAY, a 503 at once when the upstream refuses (or `connect_timeout`
passes), deadlines (`grpc-timeout` sent, and the call reset here when it passes),
cancellation (RST_STREAM), back-pressure (the server may send at most
`loop_connection.STREAM_WINDOW` ahead of the HTTP client), TLS and mutual TLS (`ssl`, ALPN
h2), keepalive pings, and the transparent retry of a call the server refused unprocessed
(a GOAWAY's later streams, REFUSED_STREAM). What it does not: one `host:port` (or
`unix:path`) only, no load balancing over replicas, no retry policy, no C-core channel
options (`UpstreamOptions` refuses them with this transport, and `auto` picks grpcio's
channel for them).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import ssl
import time
from collections.abc import AsyncIterator

from google.protobuf.message import Message

from protoc_gen_restmon import __version__
from protoc_gen_restmon.runtime.errors import ConfigError
from protoc_gen_restmon.runtime.gateway import h2wire
from protoc_gen_restmon.runtime.gateway.http import Headers
from protoc_gen_restmon.runtime.gateway.loop_connection import Connection, Stream, StreamRefused
from protoc_gen_restmon.runtime.gateway.upstream import (
    CallOptions,
    RpcMethod,
    Target,
    UnaryResponse,
    UpstreamOptions,
    decode_response,
)
from protoc_gen_restmon.runtime.status import Code, RpcError

USER_AGENT = f"restmon-gateway/{__version__}".encode()


def check_target(target: Target) -> tuple[str, int] | str:
    """(host, port) of a `host:port` target, or the path of `unix:path`; a resolver target
    (dns:///, ipv4: lists) is a ConfigError: only grpcio's channel balances over replicas."""
    name = target.name
    if name.startswith("unix:") and not name.startswith("unix-abstract:"):
        return name[len("unix:") :].removeprefix("//")
    host, _, port = name.rpartition(":")
    if name.startswith(("dns:", "ipv4:", "ipv6:", "unix-abstract:")) or not port.isdigit():
        raise ConfigError(
            f"upstream {name!r}: the asyncio transport reaches one host:port (or unix:path); "
            "replicas behind a resolver need the grpcio transport"
        )
    return host.strip("[]"), int(port)


class LoopUpstream:
    """The upstream gRPC server over one HTTP/2 connection on the event loop (opened on first
    use, reopened after it closes); the same surface as `upstream.Upstream`."""

    def __init__(self, target: Target, options: UpstreamOptions) -> None:
        self.target = target
        self.options = options
        self._address = check_target(target)
        self._ssl = _ssl_context(options)
        self._authority = target.name.encode() if isinstance(self._address, tuple) else b"localhost"
        self._connection: Connection | None = None
        self._connecting: asyncio.Future[Connection] | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._blocks: dict[str, bytes] = {}  # per method: the fixed start of its header block

    async def call(
        self, method: RpcMethod, requests: Message | AsyncIterator[Message], options: CallOptions
    ) -> LoopCall:
        """As `Upstream.call`: returns once the response's headers (and a unary call's
        response) have come. A call the server refused unprocessed (`StreamRefused`: a GOAWAY
        during a restart, say) is made once more (after a GOAWAY, on a new connection), as
        C-core's transparent retry does; not a client stream, whose messages were taken from
        the HTTP body."""
        began = time.monotonic()
        try:
            return await self._attempt(method, requests, options)
        except StreamRefused:
            if not isinstance(requests, Message):
                raise
        if options.timeout is not None:
            left = options.timeout - (time.monotonic() - began)
            options = dataclasses.replace(options, timeout=max(left, 0.0))
        return await self._attempt(method, requests, options)

    async def _attempt(
        self, method: RpcMethod, requests: Message | AsyncIterator[Message], options: CallOptions
    ) -> LoopCall:
        connection = await self._connected()
        stream = await connection.open(self._block(method, options), options.timeout)
        try:
            if isinstance(requests, Message):
                stream.write(requests.SerializeToString(), end=True)
            else:
                async for message in requests:
                    await stream.send(message.SerializeToString())
                stream.finish()
            await stream.response_headers()
            response = None if method.server_streaming else await stream.only_message()
        except BaseException:
            stream.cancel()  # the HTTP client gone, a bad request line: the server is told
            raise
        return LoopCall(stream, method, response)

    def _block(self, method: RpcMethod, options: CallOptions) -> bytes:
        path = method.spec.grpc_path
        fixed = self._blocks.get(path)
        if fixed is None:
            scheme = b"https" if self._ssl is not None else b"http"
            fixed = self._blocks[path] = h2wire.encode_headers(
                [(b":method", b"POST"), (b":scheme", scheme), (b":path", path.encode()),
                 (b":authority", self._authority), (b"te", b"trailers"),
                 (b"content-type", b"application/grpc"), (b"user-agent", USER_AGENT)]
            )  # fmt: skip
        extra = [(key.encode(), _metadata_value(value)) for key, value in options.metadata]
        if options.timeout is not None:
            extra.append((b"grpc-timeout", _timeout(options.timeout)))
        return fixed + h2wire.encode_headers(extra)

    async def _connected(self) -> Connection:
        loop = asyncio.get_running_loop()
        connection = self._connection
        if connection is not None and self._loop is loop and connection.usable():
            return connection
        if self._connecting is None or self._loop is not loop:
            self._loop = loop
            self._connecting = loop.create_future()
            # A task, so that the attempt outlives a waiting call whose client left.
            self._connect_task = loop.create_task(self._connect(self._connecting))
        return await asyncio.shield(self._connecting)

    async def _connect(self, result: asyncio.Future[Connection]) -> None:
        """One connection attempt, shared by the calls waiting for it."""
        loop = asyncio.get_running_loop()
        try:
            server_name = self._server_name() if self._ssl else None
            factory = functools.partial(Connection, self.options, self.target.name, loop)
            if isinstance(self._address, str):
                make = loop.create_unix_connection(
                    factory, self._address, ssl=self._ssl, server_hostname=server_name
                )
            else:
                host, port = self._address
                make = loop.create_connection(
                    factory, host, port, ssl=self._ssl, server_hostname=server_name
                )
            _, connection = await asyncio.wait_for(make, self.options.connect_timeout)
            connection.check_alpn()
        except (OSError, asyncio.TimeoutError, ssl.SSLError, RpcError) as err:
            reason = str(err) or type(err).__name__
            if isinstance(err, asyncio.TimeoutError):
                reason = f"no connection within {self.options.connect_timeout:g} s"
            name = self.target.name
            failure = RpcError(Code.UNAVAILABLE, f"upstream {name} unavailable: {reason}")
            self._connecting = None
            if not result.done():
                result.set_exception(failure)
                result.exception()  # retrieved: a call that stopped waiting leaves no warning
            return
        self._connection, self._connecting = connection, None
        if not result.done():
            result.set_result(connection)

    def _server_name(self) -> str:
        tls = self.options.tls
        server_name = getattr(tls, "server_name", None)
        if server_name:
            return str(server_name)
        return self._address[0] if isinstance(self._address, tuple) else "localhost"

    async def close(self) -> None:
        """Close the connection (its calls end CANCELLED); the next call opens a new one."""
        connection, self._connection = self._connection, None
        if connection is not None and self._loop is asyncio.get_running_loop():
            connection.close()


class LoopCall:
    """One call in flight (as `upstream.UpstreamCall`): `headers`, then `messages()`;
    `close()` resets the stream unless it finished."""

    def __init__(self, stream: Stream, method: RpcMethod, response: bytes | None) -> None:
        self._stream = stream
        self._response_class = method.response_upb
        self._streaming = method.server_streaming
        self._response = response
        self.headers: Headers = stream.metadata_headers()

    def messages(self) -> AsyncIterator[Message]:
        if not self._streaming:
            assert self._response is not None
            return UnaryResponse(self._decode, self._response)
        return self._stream_messages()

    async def _stream_messages(self) -> AsyncIterator[Message]:
        while True:
            data = await self._stream.next_message()
            if data is None:
                return
            yield self._decode(data)

    def _decode(self, data: bytes) -> Message:
        return decode_response(self._response_class, data)

    async def close(self) -> None:
        self._stream.cancel()


def _metadata_value(value: str | bytes) -> bytes:
    if isinstance(value, bytes):  # a -bin key's bytes: base64 without padding (gRPC's form)
        return base64.b64encode(value).rstrip(b"=")
    return value.encode("latin-1")


def _timeout(seconds: float) -> bytes:
    """`grpc-timeout` for `seconds`: the finest unit whose value fits in 8 digits."""
    for unit, scale in ((b"u", 1e6), (b"m", 1e3), (b"S", 1.0), (b"M", 1 / 60)):
        value = max(0, int(seconds * scale))
        if value < 100_000_000:
            return str(value).encode() + unit
    return b"99999999H"


def _ssl_context(options: UpstreamOptions) -> ssl.SSLContext | None:
    """TLS of `options.tls` as an ssl context offering only h2 (ALPN)."""
    tls = options.tls
    if not tls:
        return None
    if isinstance(tls, ssl.SSLContext):
        context = tls
    else:
        ca, cert, key = (
            getattr(tls, "ca", None),
            getattr(tls, "cert", None),
            getattr(tls, "key", None),
        )
        if (cert is None) != (key is None):
            raise ConfigError("upstream TLS: a client certificate needs both cert and key")
        try:
            context = ssl.create_default_context(cafile=None if ca is None else str(ca))
            if cert is not None:
                context.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(
                f"upstream TLS: cannot use {err.filename or 'its files'}: {err}"
            ) from err
    context.set_alpn_protocols(["h2"])
    return context
