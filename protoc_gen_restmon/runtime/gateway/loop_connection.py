"""The asyncio transport's connection (see loop_upstream): an asyncio protocol around
`h2wire.H2ClientConnection`, and one `Stream` per call: its request written under the server's
flow control, its response headers, messages (reassembled from DATA, the server's window given
back as the caller reads them: back-pressure) and trailers, and the status they carry."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import urllib.parse
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from protoc_gen_restmon.runtime.gateway import h2wire
from protoc_gen_restmon.runtime.gateway.http import Headers
from protoc_gen_restmon.runtime.gateway.upstream import UpstreamOptions, encode_response_metadata
from protoc_gen_restmon.runtime.status import Code, RpcError, status_details

STREAM_WINDOW = 1024 * 1024  # what the server may send of one stream ahead of its reader
CONNECTION_WINDOW = 16 * 1024 * 1024
# Response headers that are HTTP/2's or gRPC's, not the server's metadata.
RESERVED_RESPONSE = frozenset({b"content-type", b"grpc-encoding", b"grpc-accept-encoding"})
# gRPC's mapping of HTTP/2 RST_STREAM codes to a call's status (PROTOCOL-HTTP2.md); REFUSED_STREAM
# is UNAVAILABLE too, as StreamRefused (Connection._reset_error): the call may be made again.
RESET_CODES = {0x8: Code.CANCELLED, 0xB: Code.RESOURCE_EXHAUSTED,
               0xC: Code.PERMISSION_DENIED}  # fmt: skip
# …and of an HTTP status other than 200 (http-grpc-status-mapping.md).
HTTP_CODES = {400: Code.INTERNAL, 401: Code.UNAUTHENTICATED, 403: Code.PERMISSION_DENIED,
              404: Code.UNIMPLEMENTED, 429: Code.UNAVAILABLE, 502: Code.UNAVAILABLE,
              503: Code.UNAVAILABLE, 504: Code.UNAVAILABLE}  # fmt: skip
MESSAGE_PREFIX = 5  # a gRPC message: compressed flag, 4-byte length, the message


class StreamRefused(RpcError):
    """UNAVAILABLE for a call the server never processed: its stream was beyond a GOAWAY's
    last stream, or reset with REFUSED_STREAM, or never opened on a connection going away
    (RFC 9113 §8.7). It may be made again as it was, on another connection."""


class Connection(asyncio.Protocol):
    """The HTTP/2 connection: frames in and out through `h2wire`, events to their streams."""

    def __init__(
        self, options: UpstreamOptions, name: str, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._name = name  # the target, for the errors
        # The loop it was made on, which runs it and its calls. Kept, not looked up: on Python
        # 3.10 and 3.11 each asyncio.get_running_loop() is a getpid() system call.
        self.loop = loop
        self._h2 = h2wire.H2ClientConnection(STREAM_WINDOW, CONNECTION_WINDOW)
        self._options = options
        self._transport: asyncio.Transport | None = None
        self._streams: dict[int, Stream] = {}
        self._slots: deque[asyncio.Future[None]] = deque()  # calls waiting for a stream
        self._drained: asyncio.Future[None] | None = None  # set while the socket is full
        self._closed = False
        self._pinger: asyncio.TimerHandle | None = None
        self._ping_due: asyncio.TimerHandle | None = None
        self._flush_soon: asyncio.Handle | None = None

    # -- the connection ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are no asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)
        self._h2.initiate()
        self.flush()
        if self._options.keepalive is not None:
            self._schedule_ping()

    def check_alpn(self) -> None:
        assert self._transport is not None
        tls = self._transport.get_extra_info("ssl_object")
        if tls is not None and tls.selected_alpn_protocol() != "h2":
            self.close()
            raise RpcError(Code.UNAVAILABLE, "the server's TLS does not offer HTTP/2 (ALPN h2)")

    def usable(self) -> bool:
        return not self._closed and self._h2.goaway is None

    def flush_soon(self) -> None:
        """Flush once the loop has run what is ready: the calls that start in one loop
        iteration (50 requests read at once under load) go out in one write, one syscall."""
        if self._flush_soon is None:
            self._flush_soon = self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_soon = None
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self._closed:
            self._transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive(data)
        except h2wire.H2ProtocolError as err:
            self.flush()  # its GOAWAY
            self._fail(RpcError(Code.INTERNAL, f"upstream broke HTTP/2: {err}"))
            return
        for event in events:
            self._dispatch(event)
        self.flush()
        for stream in list(self._streams.values()):
            stream.window_opened()  # a WINDOW_UPDATE may have let pending DATA go

    def _dispatch(self, event: h2wire.Event) -> None:
        if isinstance(event, h2wire.DataReceived | h2wire.HeadersReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.received(event)
        elif isinstance(event, h2wire.StreamReset):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.fail(self._reset_error(event.code))
        elif isinstance(event, h2wire.GoAwayReceived):
            self._goaway(event)
        elif isinstance(event, h2wire.PingAcknowledged) and self._ping_due is not None:
            self._ping_due.cancel()
            self._ping_due = None

    def _goaway(self, event: h2wire.GoAwayReceived) -> None:
        """Streams the server never saw fail UNAVAILABLE (the next call reconnects); those it
        took go on to their end; the connection closes after the last."""
        for stream_id, stream in list(self._streams.items()):
            if stream_id > event.last_stream_id:
                stream.fail(self._refused("it went away (GOAWAY)"))
        self._release_slots()
        if not self._streams:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc else ""
        self._fail(self._unavailable(f"connection closed{reason}"))

    def _unavailable(self, reason: str, kind: type[RpcError] = RpcError) -> RpcError:
        return kind(Code.UNAVAILABLE, f"upstream {self._name} unavailable: {reason}")

    def _refused(self, reason: str) -> RpcError:
        return self._unavailable(reason, StreamRefused)

    def _reset_error(self, code: int) -> RpcError:
        if code == h2wire.REFUSED_STREAM:
            return self._refused("it refused the stream (REFUSED_STREAM)")
        known = RESET_CODES.get(code, Code.INTERNAL)
        return RpcError(known, f"upstream reset the stream (HTTP/2 code {code})")

    def _fail(self, error: RpcError) -> None:
        self._closed = True
        for stream in list(self._streams.values()):
            stream.fail(error)
        self._release_slots()
        for timer in (self._pinger, self._ping_due):
            if timer is not None:
                timer.cancel()
        if self._transport is not None:
            self._transport.close()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def close(self) -> None:
        if not self._closed:
            self._h2.close()
            self.flush()
            self._fail(RpcError(Code.CANCELLED, "the gateway closed the upstream connection"))

    # -- flow control on our side -----------------------------------------------------------

    def pause_writing(self) -> None:
        self._drained = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    async def drained(self) -> None:
        if self._drained is not None:
            await self._drained

    # -- keepalive ---------------------------------------------------------------------------

    def _schedule_ping(self) -> None:
        assert self._options.keepalive is not None
        self._pinger = self.loop.call_later(self._options.keepalive, self._ping)

    def _ping(self) -> None:
        if self._closed:
            return
        self._h2.ping()
        self.flush()
        unanswered = self._unavailable("no answer to a keepalive ping")
        self._ping_due = self.loop.call_later(self._options.connect_timeout, self._fail, unanswered)
        self._schedule_ping()

    # -- streams -----------------------------------------------------------------------------

    async def open(self, block: bytes, timeout: float | None) -> Stream:
        while not self._h2.can_open():
            if self._h2.goaway is not None and not self._closed:
                raise self._refused("it went away (GOAWAY)")
            if not self.usable():
                raise self._unavailable("connection closed")
            slot = self.loop.create_future()
            self._slots.append(slot)
            await slot
        if self._closed:
            raise self._unavailable("connection closed")
        stream_id = self._h2.open_stream(block)
        stream = self._streams[stream_id] = Stream(self, stream_id, timeout)
        return stream

    def stream_over(self, stream_id: int) -> None:
        self._streams.pop(stream_id, None)
        self._release_slots(1)
        if self._h2.goaway is not None and not self._streams:
            self.close()

    def _release_slots(self, n: int | None = None) -> None:
        while self._slots and (n is None or n > 0):
            slot = self._slots.popleft()
            if not slot.done():
                slot.set_result(None)
                n = None if n is None else n - 1

    def write(self, stream_id: int, data: bytes, end: bool) -> None:
        self._h2.send_data(stream_id, data, end)
        self.flush_soon()

    def pending(self, stream_id: int) -> int:
        return self._h2.pending(stream_id)

    def held(self, stream_id: int, unread: int) -> None:
        self._h2.held(stream_id, unread)
        self.flush()

    def reset(self, stream_id: int) -> None:
        self._h2.reset(stream_id)
        self.flush()


@dataclass(slots=True)
class _Answer:
    """What the server said of one call so far."""

    headers: Sequence[h2wire.Header] | None = None
    trailers: Sequence[h2wire.Header] | None = None
    error: RpcError | None = None


class Stream:
    """One call's HTTP/2 stream: response headers, messages (reassembled from DATA), trailers.
    A reader waits on `_wakeup`; the server's window is given back as messages are read."""

    def __init__(self, connection: Connection, stream_id: int, timeout: float | None) -> None:
        self._connection = connection
        self._id = stream_id
        self._answer = _Answer()
        self._buffer = bytearray()
        self._messages: deque[bytes] = deque()
        self._unread = 0  # bytes of received DATA not yet read by the caller
        self._ended = False
        self._wakeup: asyncio.Future[None] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self.sending = False  # a client stream's writer waits for the server's window
        if timeout is not None:
            self._deadline = connection.loop.call_later(max(timeout, 0.0), self._expire)

    # -- the connection's side ---------------------------------------------------------------

    def received(self, event: h2wire.DataReceived | h2wire.HeadersReceived) -> None:
        if isinstance(event, h2wire.HeadersReceived):
            if self._answer.headers is None:
                self._answer.headers = event.headers
                error = _header_error(event.headers)
                if error is not None:
                    self._cancel_with(error)
                    return
            else:
                self._answer.trailers = event.headers
            if event.end_stream and self._answer.trailers is None:
                self._answer.trailers = event.headers  # trailers-only: status in the headers
        else:
            self._take(event.data)
        if event.end_stream:
            self._end()
        self._wake()

    def _take(self, data: bytes) -> None:
        """Reassemble messages; bytes of a message not complete yet count as read (the server
        must send the rest of it), complete ones are held until the caller reads them."""
        self._buffer += data
        buffer = self._buffer
        while len(buffer) >= MESSAGE_PREFIX:
            size = int.from_bytes(buffer[1:MESSAGE_PREFIX], "big")
            if len(buffer) < MESSAGE_PREFIX + size:
                break
            if buffer[0]:
                self._cancel_with(RpcError(Code.INTERNAL, "upstream sent a compressed message"))
                return
            self._messages.append(bytes(buffer[MESSAGE_PREFIX : MESSAGE_PREFIX + size]))
            self._unread += MESSAGE_PREFIX + size
            del buffer[: MESSAGE_PREFIX + size]
        self._connection.held(self._id, self._unread)

    def fail(self, error: RpcError) -> None:
        if self._answer.error is None and not self._ended:
            self._answer.error = error
        self._end()
        self._wake()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            if self._deadline is not None:
                self._deadline.cancel()
            self._connection.stream_over(self._id)

    def _wake(self) -> None:
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def _expire(self) -> None:
        self._deadline = None
        self._cancel_with(RpcError(Code.DEADLINE_EXCEEDED, "upstream deadline exceeded"))

    def _cancel_with(self, error: RpcError) -> None:
        if not self._ended:
            self._connection.reset(self._id)
            self.fail(error)

    # -- the caller's side -------------------------------------------------------------------

    def write(self, data: bytes, end: bool) -> None:
        """One message (uncompressed), and END_STREAM after it if `end`."""
        if not self._ended:
            prefix = b"\x00" + len(data).to_bytes(4, "big")
            self._connection.write(self._id, prefix + data, end)

    def finish(self) -> None:
        """END_STREAM: the client stream's last message was sent."""
        if not self._ended:
            self._connection.write(self._id, b"", True)

    async def send(self, data: bytes) -> None:
        """One message of a client stream, waiting while the server's window is full."""
        self.write(data, end=False)
        while not self._ended and self._connection.pending(self._id):
            self.sending = True
            await self._wait()
        self.sending = False
        await self._connection.drained()
        self._raise_failure()

    def window_opened(self) -> None:
        if self.sending:
            self._wake()

    async def response_headers(self) -> None:
        while self._answer.headers is None and not self._ended:
            await self._wait()
        self._raise_failure()
        if self._answer.headers is None or (self._ended and not self._messages):
            self._raise_status()

    async def only_message(self) -> bytes:
        """The one response message of a unary call, with its OK status checked."""
        while not self._ended:
            await self._wait()
        self._raise_status()
        if len(self._messages) != 1:
            count = len(self._messages)
            raise RpcError(Code.INTERNAL, f"upstream answered a unary call with {count} messages")
        return self._messages.popleft()

    async def next_message(self) -> bytes | None:
        """The next message of a server stream; None at its (OK) end."""
        while not self._messages and not self._ended:
            await self._wait()
        if self._messages:
            message = self._messages.popleft()
            self._unread -= MESSAGE_PREFIX + len(message)
            self._connection.held(self._id, self._unread)
            return message
        self._raise_status()
        return None

    def metadata_headers(self) -> Headers:
        """The response's initial metadata as `Grpc-Metadata-K` headers (as grpcio's)."""
        return encode_response_metadata(_metadata(self._answer.headers or []))

    def cancel(self) -> None:
        self._cancel_with(RpcError(Code.CANCELLED, "call cancelled"))

    async def _wait(self) -> None:
        if self._wakeup is None:
            self._wakeup = self._connection.loop.create_future()
        await self._wakeup

    def _raise_failure(self) -> None:
        if self._answer.error is not None:
            raise self._answer.error

    def _raise_status(self) -> None:
        """The call's status from its trailers: OK returns, anything else raises."""
        self._raise_failure()
        trailers = self._answer.trailers
        if trailers is None:
            raise RpcError(Code.INTERNAL, "upstream ended the stream without a status")
        values = dict(trailers)
        raw_code = values.get(b"grpc-status")
        if raw_code is None or not raw_code.isdigit():
            raise RpcError(Code.INTERNAL, "upstream ended the stream without a grpc-status")
        code = int(raw_code)
        if code == 0:
            return
        message = urllib.parse.unquote(values.get(b"grpc-message", b"").decode("latin-1"))
        try:
            known = Code(code)
        except ValueError:
            known = Code.UNKNOWN
        details = _details(values.get(b"grpc-status-details-bin"))
        raise RpcError(known, message or known.name, details=details)


def _header_error(headers: Sequence[h2wire.Header]) -> RpcError | None:
    """The error of a response that is not gRPC: an HTTP status or content type gRPC's is not."""
    values = dict(headers)
    status = values.get(b":status", b"")
    if status != b"200":
        number = int(status) if status.isdigit() else 0
        code = HTTP_CODES.get(number, Code.UNKNOWN)
        return RpcError(code, f"upstream answered HTTP {status.decode('latin-1')}, not gRPC")
    if not values.get(b"content-type", b"").startswith(b"application/grpc"):
        return RpcError(Code.UNKNOWN, "upstream answered without content-type application/grpc")
    return None


def _metadata(headers: Sequence[h2wire.Header]) -> list[tuple[str, str | bytes]]:
    """The server's metadata in a header block: no pseudo-headers, no gRPC reserved names;
    `-bin` values decoded from base64 (a value that is not is left out)."""
    metadata: list[tuple[str, str | bytes]] = []
    for raw_name, raw_value in headers:
        if raw_name.startswith((b":", b"grpc-")) or raw_name in RESERVED_RESPONSE:
            continue
        name = raw_name.decode("latin-1")
        if name.endswith("-bin"):
            with contextlib.suppress(binascii.Error, ValueError):
                metadata.append((name, _unbase64(raw_value)))
            continue
        metadata.append((name, raw_value.decode("latin-1")))
    return metadata


def _details(value: bytes | None) -> tuple[Any, ...]:
    if not value:
        return ()
    try:
        return tuple(status_details(_unbase64(value)))
    except (binascii.Error, ValueError):
        return ()


def _unbase64(value: bytes) -> bytes:
    return base64.b64decode(value + b"=" * (-len(value) % 4), validate=True)
