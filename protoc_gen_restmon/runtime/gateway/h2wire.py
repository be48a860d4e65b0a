"""The client side of HTTP/2 (RFC 9113) as gRPC uses it, sans I/O (h11's discipline): bytes
in (`receive`), events out, bytes to send (`data_to_send`). No sockets, no event loop, no
clock: `runtime/gateway/loop_upstream.py` drives it on the gateway's event loop.

What gRPC needs and no more: streams opened with a header block, DATA both ways under flow
control, trailers, RST_STREAM, SETTINGS, PING, GOAWAY. Server push is refused (SETTINGS), so
PUSH_PROMISE is a protocol error. Request header blocks are HPACK literals that never touch
the dynamic table (`encode_headers`), so only the response side keeps HPACK state (hpack's
Decoder, behind a cache of the blocks that are all indexed: see `_Blocks`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE = 0, 1, 2, 3, 4, 5
PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_ENABLE_PUSH = 0x1, 0x2
SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_INITIAL_WINDOW_SIZE = 0x3, 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR = 0x0, 0x1, 0x3, 0x6
REFUSED_STREAM, CANCEL = 0x7, 0x8
DEFAULT_WINDOW = 65_535
MAX_WINDOW = 2**31 - 1
FRAME_SIZE = 16_384  # the largest frame either side may send until told otherwise
_HEADER = struct.Struct(">HBBBL")  # a frame header: 24-bit length as 16 + 8, type, flags, id
_U32 = struct.Struct(">L")

Header = tuple[bytes, bytes]


class H2ProtocolError(Exception):
    """The server broke HTTP/2: the connection must end (`code` for its GOAWAY)."""

    def __init__(self, message: str, code: int = PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


# Events, in the order the server's frames carried them.
@dataclass(frozen=True, slots=True)
class HeadersReceived:
    stream_id: int
    headers: tuple[Header, ...]  # shared by the events of identical blocks: never changed
    end_stream: bool


@dataclass(frozen=True, slots=True)
class DataReceived:
    stream_id: int
    data: bytes
    end_stream: bool


@dataclass(frozen=True, slots=True)
class StreamReset:
    stream_id: int
    code: int


@dataclass(frozen=True, slots=True)
class GoAwayReceived:
    last_stream_id: int
    code: int
    debug: bytes


@dataclass(frozen=True, slots=True)
class PingAcknowledged:
    payload: bytes


Event = HeadersReceived | DataReceived | StreamReset | GoAwayReceived | PingAcknowledged


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    size = len(payload)
    return _HEADER.pack(size >> 8, size & 0xFF, kind, flags, stream_id) + payload


def _integer(value: int, prefix_bits: int, first: int) -> bytes:
    """An HPACK integer (RFC 7541 §5.1) with `first`'s high bits before the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(value: bytes) -> bytes:
    return _integer(len(value), 7, 0) + value  # no Huffman: shorter to make, a few bytes more


def encode_headers(headers: Iterable[Header]) -> bytes:
    """HPACK literals without indexing and with literal names (RFC 7541 §6.2.2): the block
    means the same to any decoder whatever its dynamic table holds, so request blocks can be
    made (and the fixed part of them kept) without an encoder's state."""
    out = bytearray()
    for name, value in headers:
        if len(name) < 127 and len(value) < 127:  # one-byte lengths, the usual case: one step
            out += b"\x00%c%b%c%b" % (len(name), name, len(value), value)
        else:
            out += b"\x00" + _string(name) + _string(value)
    return bytes(out)


class _Blocks:
    """The decoded header blocks made of indexed fields only, for as long as they mean the same.

    A server's HPACK encoder indexes what it sends again and again, so after the first call a
    gRPC server's headers (`:status`, `content-type`) and trailers (`grpc-status: 0`) come as a
    few one-byte indexed fields: the same bytes, call after call, and decoding them (hpack's
    Decoder is pure Python) was a tenth of the gateway's CPU per proxied request. A block whose
    every byte has the high bit set is exactly that, a run of one-byte indexed fields (RFC 7541
    §6.1; a longer index ends in a byte without it): decoding it reads the dynamic table
    without changing it, so its headers hold until a block that may change the table is
    decoded (a literal with indexing, a table size update), which forgets them all.
    """

    LIMIT = 64  # distinct all-indexed blocks kept (a server has a few: headers, trailers)

    def __init__(self, decoder: hpack.Decoder) -> None:
        self._decoder = decoder
        self._known: dict[bytes, tuple[Header, ...]] = {}

    def decode(self, block: bytes) -> tuple[Header, ...]:
        headers = self._known.get(block)
        if headers is not None:
            return headers
        headers = tuple((bytes(k), bytes(v)) for k, v in self._decoder.decode(block, raw=True))
        if block and all(byte & 0x80 for byte in block):
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            self._known[block] = headers
        else:  # it may have changed the table: what the known blocks meant may have changed
            self._known.clear()
        return headers


@dataclass(slots=True)
class _Stream:
    send_window: int
    pending: bytearray = field(default_factory=bytearray)  # DATA waiting for window
    pending_end: bool = False  # END_STREAM after the pending data
    local_closed: bool = False  # END_STREAM sent (or queued behind pending data)
    received: int = 0  # DATA bytes received (flow-controlled, padding included)
    credited: int = 0  # of those, given back to the server in WINDOW_UPDATEs


class H2ClientConnection:
    """One client connection's HTTP/2 state. `stream_window`: our receive window per stream,
    the bound on what the server may send ahead of the reader (back-pressure); the
    connection's window is `connection_window`."""

    def __init__(self, stream_window: int = DEFAULT_WINDOW, connection_window: int = 0) -> None:
        self.stream_window = stream_window
        self.connection_window = max(connection_window, stream_window, DEFAULT_WINDOW)
        self._blocks = _Blocks(hpack.Decoder())
        self._out = bytearray()
        self._in = bytearray()
        self._streams: dict[int, _Stream] = {}
        self._next_id = 1
        self._send_window = DEFAULT_WINDOW  # the connection's, for our DATA
        self._initial_send_window = DEFAULT_WINDOW  # each new stream's (the server's SETTINGS)
        self._max_frame = FRAME_SIZE
        self._received = 0  # connection-level DATA bytes not yet given back
        # A header block still in CONTINUATION frames: (stream id, HEADERS flags, block).
        self._headers: tuple[int, int, bytearray] | None = None
        self.max_concurrent_streams = MAX_WINDOW  # the server's limit
        self.goaway: GoAwayReceived | None = None

    # -- what the caller does ---------------------------------------------------------------

    def initiate(self) -> None:
        """The preface and our SETTINGS: no push, `stream_window`; then the connection window."""
        settings = struct.pack(">HLHL", SETTINGS_ENABLE_PUSH, 0, SETTINGS_INITIAL_WINDOW_SIZE,
                               self.stream_window)  # fmt: skip
        self._out += PREFACE + frame(SETTINGS, 0, 0, settings)
        if self.connection_window > DEFAULT_WINDOW:
            increment = self.connection_window - DEFAULT_WINDOW
            self._out += frame(WINDOW_UPDATE, 0, 0, _U32.pack(increment))

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def can_open(self) -> bool:
        return self.goaway is None and len(self._streams) < self.max_concurrent_streams

    def open_stream(self, block: bytes, end_stream: bool = False) -> int:
        """A new stream with the HPACK header `block` (split into CONTINUATION as needed)."""
        stream_id = self._next_id
        self._next_id += 2
        self._streams[stream_id] = _Stream(self._initial_send_window, local_closed=end_stream)
        first, rest = block[: self._max_frame], block[self._max_frame :]
        flags = (END_STREAM if end_stream else 0) | (0 if rest else END_HEADERS)
        self._out += frame(HEADERS, flags, stream_id, first)
        while rest:
            chunk, rest = rest[: self._max_frame], rest[self._max_frame :]
            self._out += frame(CONTINUATION, 0 if rest else END_HEADERS, stream_id, chunk)
        return stream_id

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Queue DATA; it goes out as the windows allow (`pending` tells what still waits)."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.local_closed:
            return  # reset meanwhile: nothing to send
        stream.pending += data
        stream.pending_end = end_stream
        stream.local_closed = end_stream
        self._flush(stream_id, stream)

    def pending(self, stream_id: int) -> int:
        """Bytes of `stream_id`'s DATA still waiting for flow-control window."""
        stream = self._streams.get(stream_id)
        return len(stream.pending) if stream is not None else 0

    def held(self, stream_id: int, unread: int) -> None:
        """The reader holds `unread` of the stream's received bytes: give the server back the
        rest of what it sent, in one WINDOW_UPDATE once that is a quarter of the window."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        credit = stream.received - unread - stream.credited
        if credit > 0 and credit * 4 >= self.stream_window:
            stream.credited += credit
            self._out += frame(WINDOW_UPDATE, 0, stream_id, _U32.pack(credit))

    def reset(self, stream_id: int, code: int = CANCEL) -> None:
        """RST_STREAM, unless the stream is over already."""
        if self._streams.pop(stream_id, None) is not None:
            self._out += frame(RST_STREAM, 0, stream_id, _U32.pack(code))

    def ping(self, payload: bytes = b"\x00" * 8) -> None:
        self._out += frame(PING, 0, 0, payload)

    def close(self, code: int = NO_ERROR) -> None:
        """GOAWAY; its last stream id is 0, as a client accepts no streams from a server."""
        self._out += frame(GOAWAY, 0, 0, struct.pack(">LL", 0, code))

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    # -- what the server sent ---------------------------------------------------------------

    def receive(self, data: bytes) -> list[Event]:
        """Every event of the complete frames received so far; H2ProtocolError if the server
        broke the protocol (send `data_to_send()`, which then holds a GOAWAY, and close)."""
        buffer = self._in
        buffer += data
        events: list[Event] = []
        start = 0
        try:
            while len(buffer) - start >= 9:
                high, low, kind, flags, stream_id = _HEADER.unpack_from(buffer, start)
                size = (high << 8) | low
                if size > FRAME_SIZE:  # we never raise SETTINGS_MAX_FRAME_SIZE
                    raise H2ProtocolError(f"a {size}-byte frame", FRAME_SIZE_ERROR)
                end = start + 9 + size
                if end > len(buffer):
                    break
                payload = bytes(buffer[start + 9 : end])
                start = end
                self._frame(kind, flags, stream_id & 0x7FFFFFFF, payload, events)
        except H2ProtocolError as err:
            self._out += frame(GOAWAY, 0, 0, struct.pack(">LL", 0, err.code) + str(err).encode())
            raise
        finally:
            del buffer[:start]
        return events

    def _frame(
        self, kind: int, flags: int, stream_id: int, payload: bytes, events: list[Event]
    ) -> None:
        if self._headers is not None and kind != CONTINUATION:
            raise H2ProtocolError("a header block interrupted before END_HEADERS")
        if kind == DATA:
            self._data(flags, stream_id, payload, events)
        elif kind == HEADERS:
            self._header_frame(flags, stream_id, payload, events)
        elif kind == CONTINUATION:
            self._continuation(flags, stream_id, payload, events)
        elif kind == RST_STREAM:
            self._need(stream_id != 0 and len(payload) == 4, "RST_STREAM")
            if self._streams.pop(stream_id, None) is not None:
                events.append(StreamReset(stream_id, _U32.unpack(payload)[0]))
        elif kind == SETTINGS:
            self._settings(flags, stream_id, payload)
        elif kind == PING:
            self._need(stream_id == 0 and len(payload) == 8, "PING")
            if flags & ACK:
                events.append(PingAcknowledged(payload))
            else:
                self._out += frame(PING, ACK, 0, payload)
        elif kind == GOAWAY:
            self._need(stream_id == 0 and len(payload) >= 8, "GOAWAY")
            last, code = struct.unpack_from(">LL", payload)
            self.goaway = GoAwayReceived(last & 0x7FFFFFFF, code, payload[8:])
            events.append(self.goaway)
        elif kind == WINDOW_UPDATE:
            self._window_update(stream_id, payload)
        elif kind == PUSH_PROMISE:
            raise H2ProtocolError("PUSH_PROMISE, with push disabled")
        # PRIORITY and unknown frame types are ignored (RFC 9113 §5.5).

    @staticmethod
    def _need(ok: bool, what: str) -> None:
        if not ok:
            raise H2ProtocolError(f"a malformed {what} frame", FRAME_SIZE_ERROR)

    def _unpad(self, flags: int, payload: bytes, what: str) -> bytes:
        if not flags & PADDED:
            return payload
        self._need(len(payload) >= 1 and payload[0] < len(payload), what)
        return payload[1 : len(payload) - payload[0]]

    def _data(self, flags: int, stream_id: int, payload: bytes, events: list[Event]) -> None:
        self._need(stream_id != 0, "DATA")
        self._received += len(payload)
        if self._received > self.connection_window:
            raise H2ProtocolError("DATA beyond the connection window", FLOW_CONTROL_ERROR)
        if self._received * 2 >= self.connection_window:
            self._out += frame(WINDOW_UPDATE, 0, 0, _U32.pack(self._received))
            self._received = 0
        stream = self._streams.get(stream_id)
        data = self._unpad(flags, payload, "DATA")
        if stream is None:
            return  # a stream we reset: its bytes were given back above
        stream.received += len(data)
        stream.credited += len(payload) - len(data)  # padding is never the reader's
        if stream.received - stream.credited > self.stream_window:
            raise H2ProtocolError("DATA beyond the stream window", FLOW_CONTROL_ERROR)
        end = bool(flags & END_STREAM)
        if end:
            self._remote_end(stream_id, stream)
        events.append(DataReceived(stream_id, data, end))

    def _header_frame(
        self, flags: int, stream_id: int, payload: bytes, events: list[Event]
    ) -> None:
        self._need(stream_id != 0, "HEADERS")
        block = self._unpad(flags, payload, "HEADERS")
        if flags & PRIORITY_FLAG:
            self._need(len(block) >= 5, "HEADERS")
            block = block[5:]
        if flags & END_HEADERS:
            self._header_block(stream_id, flags, block, events)
        else:
            self._headers = (stream_id, flags, bytearray(block))

    def _continuation(
        self, flags: int, stream_id: int, payload: bytes, events: list[Event]
    ) -> None:
        if self._headers is None or self._headers[0] != stream_id:
            raise H2ProtocolError("CONTINUATION without its HEADERS")
        self._headers[2].extend(payload)
        if flags & END_HEADERS:
            first_id, first_flags, block = self._headers
            self._headers = None
            self._header_block(first_id, first_flags, bytes(block), events)

    def _header_block(self, stream_id: int, flags: int, block: bytes, events: list[Event]) -> None:
        try:
            # Decoded even for a stream we reset: the decoder's table must follow the server's.
            headers = self._blocks.decode(block)
        except hpack.HPACKError as err:
            raise H2ProtocolError(f"a header block HPACK cannot decode: {err}", 0x9) from err
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        end = bool(flags & END_STREAM)
        if end:
            self._remote_end(stream_id, stream)
        events.append(HeadersReceived(stream_id, headers, end))

    def _remote_end(self, stream_id: int, stream: _Stream) -> None:
        """The server ended the stream: it is over here (a gRPC response ends the call; DATA
        we still had to send is dropped, as the server no longer reads)."""
        del self._streams[stream_id]

    def _settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        self._need(stream_id == 0 and len(payload) % 6 == 0, "SETTINGS")
        if flags & ACK:
            return
        for offset in range(0, len(payload), 6):
            key, value = struct.unpack_from(">HL", payload, offset)
            if key == SETTINGS_INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise H2ProtocolError("INITIAL_WINDOW_SIZE too large", FLOW_CONTROL_ERROR)
                delta, self._initial_send_window = value - self._initial_send_window, value
                for stream in self._streams.values():
                    stream.send_window += delta
            elif key == SETTINGS_MAX_FRAME_SIZE:
                if not FRAME_SIZE <= value <= 2**24 - 1:
                    raise H2ProtocolError(f"MAX_FRAME_SIZE {value}")
                self._max_frame = value
            elif key == SETTINGS_MAX_CONCURRENT_STREAMS:
                self.max_concurrent_streams = value
            # HEADER_TABLE_SIZE bounds the server's decoder: our literals never index.
        self._out += frame(SETTINGS, ACK, 0)
        self._flush_all()

    def _window_update(self, stream_id: int, payload: bytes) -> None:
        self._need(len(payload) == 4, "WINDOW_UPDATE")
        increment = _U32.unpack(payload)[0] & 0x7FFFFFFF
        if stream_id == 0:
            self._send_window += increment
            if self._send_window > MAX_WINDOW:
                raise H2ProtocolError("the connection window overflowed", FLOW_CONTROL_ERROR)
            self._flush_all()
            return
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.send_window += increment
            self._flush(stream_id, stream)

    def _flush_all(self) -> None:
        for stream_id, stream in list(self._streams.items()):
            if stream.pending or stream.pending_end:
                self._flush(stream_id, stream)

    def _flush(self, stream_id: int, stream: _Stream) -> None:
        """Send what the windows allow of the stream's pending DATA (and END_STREAM)."""
        while stream.pending:
            size = min(len(stream.pending), stream.send_window, self._send_window, self._max_frame)
            if size <= 0:
                return
            chunk = bytes(stream.pending[:size])
            del stream.pending[:size]
            stream.send_window -= size
            self._send_window -= size
            last = not stream.pending and stream.pending_end
            self._out += frame(DATA, END_STREAM if last else 0, stream_id, chunk)
            if last:
                stream.pending_end = False
                return
        if stream.pending_end:  # END_STREAM with no data left to carry it
            stream.pending_end = False
            self._out += frame(DATA, END_STREAM, stream_id)
