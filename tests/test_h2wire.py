"""h2wire, the sans-I/O HTTP/2 client of the asyncio transport, against an independent
implementation: the h2 library's server side (python-hyper), in memory, bytes handed across
in chunks of any size."""

from __future__ import annotations

import struct

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.gateway import h2wire
from protoc_gen_restmon.runtime.gateway.h2wire import (
    DataReceived,
    H2ClientConnection,
    H2ProtocolError,
    HeadersReceived,
    encode_headers,
)

REQUEST = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/s/M"),
           (b":authority", b"upstream"), (b"content-type", b"application/grpc"),
           (b"te", b"trailers")]  # fmt: skip


class Pair:
    """Our client connection and an h2 server, wired back to back; `chunks` cuts what each
    side sends into pieces (of the sizes drawn, repeated), to find framing bugs."""

    def __init__(self, chunks: list[int] | None = None, **client: int) -> None:
        self.client = H2ClientConnection(**client)
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.server = h2.connection.H2Connection(config)
        self.server.initiate_connection()
        self.chunks = chunks or [1 << 20]
        self.client_events: list[h2wire.Event] = []
        self.server_events: list[h2.events.Event] = []

    def _pieces(self, data: bytes) -> list[bytes]:
        pieces, at, n = [], 0, 0
        while at < len(data):
            size = max(1, self.chunks[n % len(self.chunks)])
            pieces.append(data[at : at + size])
            at, n = at + size, n + 1
        return pieces

    def pump(self) -> None:
        """Exchange bytes until neither side has any to send."""
        while True:
            to_server = self.client.data_to_send()
            for piece in self._pieces(to_server):
                self.server_events += self.server.receive_data(piece)
            to_client = self.server.data_to_send()
            for piece in self._pieces(to_client):
                self.client_events += self.client.receive(piece)
            if not to_server and not to_client:
                return

    def server_data(self, stream_id: int) -> bytes:
        return b"".join(
            e.data
            for e in self.server_events
            if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id
        )

    def client_data(self, stream_id: int) -> bytes:
        return b"".join(
            e.data
            for e in self.client_events
            if isinstance(e, DataReceived) and e.stream_id == stream_id
        )


header_names = st.binary(min_size=1, max_size=40).map(lambda b: bytes(c % 26 + 97 for c in b))
header_values = st.binary(max_size=300)


@given(st.lists(st.tuples(header_names, header_values), max_size=12), st.integers(0, 40))
def test_request_literals_decode_to_the_same_headers_whatever_the_table(
    headers: list[tuple[bytes, bytes]], indexed: int
) -> None:
    """Literals without indexing mean the same to a decoder with any dynamic table."""
    encoder, decoder = hpack.Encoder(), hpack.Decoder()
    warm = [(b"x-warm-%d" % n, b"v" * n) for n in range(indexed)]
    decoder.decode(encoder.encode(warm))  # the decoder's table now holds entries
    assert decoder.decode(encode_headers(headers), raw=True) == headers
    assert decoder.decode(encoder.encode([(b"x-warm-1", b"v")]), raw=True) == [(b"x-warm-1", b"v")]


@settings(max_examples=60, deadline=None)
@given(
    request_size=st.integers(0, 200_000),
    response_sizes=st.lists(st.integers(0, 70_000), max_size=4),
    chunks=st.lists(st.integers(1, 20_000), min_size=1, max_size=5),
    padding=st.integers(0, 255),
)
def test_a_call_crosses_to_an_h2_server_and_back(
    request_size: int, response_sizes: list[int], chunks: list[int], padding: int
) -> None:
    """A request body larger than any window reaches the server whole (our flow control
    follows its WINDOW_UPDATEs); its padded response DATA, headers and trailers reach us
    whole, in order, however the bytes are cut."""
    pair = Pair(chunks)
    pair.client.initiate()
    pair.pump()
    block = encode_headers(REQUEST)
    stream_id = pair.client.open_stream(block)
    body = bytes(range(256)) * (request_size // 256) + b"x" * (request_size % 256)
    pair.client.send_data(stream_id, body, end_stream=True)
    pair.pump()
    seen = 0
    while seen < len(pair.server_events):  # the server gives back its window as it reads
        for event in pair.server_events[seen:]:
            if isinstance(event, h2.events.DataReceived) and event.flow_controlled_length:
                pair.server.acknowledge_received_data(event.flow_controlled_length, stream_id)
        seen = len(pair.server_events)
        pair.pump()
    assert pair.client.pending(stream_id) == 0
    assert pair.server_data(stream_id) == body
    ended = [e.stream_id for e in pair.server_events if isinstance(e, h2.events.StreamEnded)]
    assert ended == [stream_id]
    received_headers = [e for e in pair.server_events if isinstance(e, h2.events.RequestReceived)]
    assert [dict(e.headers)[b":path"] for e in received_headers] == [b"/s/M"]

    pair.server.send_headers(
        stream_id, [(b":status", b"200"), (b"content-type", b"application/grpc")]
    )
    sent = b""
    for n, size in enumerate(response_sizes):
        data = bytes([n]) * size
        while data:
            window = min(pair.server.local_flow_control_window(stream_id), 16_384 - padding - 1)
            piece, data = data[:window], data[window:]
            pair.server.send_data(stream_id, piece, pad_length=padding or None)
            sent += piece
            pair.pump()
            pair.client.held(stream_id, 0)  # the reader took everything
            pair.pump()
    pair.server.send_headers(stream_id, [(b"grpc-status", b"0")], end_stream=True)
    pair.pump()
    assert pair.client_data(stream_id) == sent
    headers = [e for e in pair.client_events if isinstance(e, HeadersReceived)]
    assert [(dict(h.headers).get(b":status"), h.end_stream) for h in headers] == [
        (b"200", False),
        (None, True),
    ]
    assert dict(headers[1].headers) == {b"grpc-status": b"0"}


def test_a_stream_is_held_to_its_window_until_its_reader_takes_the_data() -> None:
    """Back-pressure: the server may send `stream_window` ahead of the reader, then nothing
    until `held` says the reader took it; one WINDOW_UPDATE gives it back."""
    pair = Pair(stream_window=100_000, connection_window=1_000_000)
    pair.client.initiate()
    pair.pump()
    stream_id = pair.client.open_stream(encode_headers(REQUEST), end_stream=True)
    pair.pump()
    pair.server.send_headers(stream_id, [(b":status", b"200")])
    assert pair.server.local_flow_control_window(stream_id) == 100_000
    for _ in range(7):
        pair.server.send_data(stream_id, b"a" * 14_000)
    pair.pump()
    pair.client.held(stream_id, unread=98_000)  # nothing read: no update
    pair.pump()
    assert pair.server.local_flow_control_window(stream_id) == 2_000
    pair.client.held(stream_id, unread=0)
    pair.pump()
    assert pair.server.local_flow_control_window(stream_id) == 100_000


def test_send_data_waits_for_the_servers_window_and_settings() -> None:
    pair = Pair()
    pair.server.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1_000})
    pair.client.initiate()
    pair.pump()
    stream_id = pair.client.open_stream(encode_headers(REQUEST))
    pair.client.send_data(stream_id, b"z" * 3_000, end_stream=True)
    pair.pump()
    assert pair.server_data(stream_id) == b"z" * 1_000
    assert pair.client.pending(stream_id) == 2_000
    pair.server.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2_500})
    pair.pump()  # the new initial size widens the open stream's window by 1,500
    assert pair.server_data(stream_id) == b"z" * 2_500
    pair.server.increment_flow_control_window(500, stream_id)
    pair.pump()
    assert pair.server_data(stream_id) == b"z" * 3_000
    ended = [e for e in pair.server_events if isinstance(e, h2.events.StreamEnded)]
    assert [e.stream_id for e in ended] == [stream_id]


def test_ping_goaway_reset_and_continuation() -> None:
    pair = Pair()
    pair.client.initiate()
    pair.pump()
    first = pair.client.open_stream(encode_headers(REQUEST), end_stream=True)
    second = pair.client.open_stream(encode_headers(REQUEST), end_stream=True)
    pair.pump()
    pair.server.ping(b"12345678")
    pair.pump()
    assert any(isinstance(e, h2.events.PingAckReceived) for e in pair.server_events)
    big = [(b"x-big-%d" % n, b"v" * 3_000) for n in range(12)]  # > one frame: CONTINUATION
    pair.server.send_headers(first, [(b":status", b"200"), *big])
    pair.server.reset_stream(second, 0x8)
    pair.pump()
    headers = [e for e in pair.client_events if isinstance(e, HeadersReceived)]
    assert dict(headers[0].headers)[b"x-big-11"] == b"v" * 3_000
    assert h2wire.StreamReset(second, 0x8) in pair.client_events
    pair.server.close_connection(last_stream_id=first)
    pair.pump()
    assert pair.client.goaway == h2wire.GoAwayReceived(first, 0, b"")
    assert not pair.client.can_open()


@pytest.mark.parametrize(
    ("kind", "payload", "code"),
    [
        (h2wire.DATA, b"x" * 16_385, h2wire.FRAME_SIZE_ERROR),  # larger than we allow
        (h2wire.PUSH_PROMISE, b"\x00\x00\x00\x02", h2wire.PROTOCOL_ERROR),
        (h2wire.PING, b"short", h2wire.FRAME_SIZE_ERROR),
        (h2wire.CONTINUATION, b"", h2wire.PROTOCOL_ERROR),  # with no HEADERS before it
    ],
)
def test_a_broken_server_is_a_protocol_error_with_a_goaway(
    kind: int, payload: bytes, code: int
) -> None:
    client = H2ClientConnection()
    client.initiate()
    client.data_to_send()
    stream = 1 if kind in (h2wire.DATA, h2wire.PUSH_PROMISE, h2wire.CONTINUATION) else 0
    with pytest.raises(H2ProtocolError) as raised:
        client.receive(h2wire.frame(kind, 0, stream, payload))
    assert raised.value.code == code
    goaway = client.data_to_send()
    assert goaway[3] == h2wire.GOAWAY and struct.unpack(">L", goaway[13:17])[0] == code


def test_data_beyond_the_stream_window_is_a_flow_control_error() -> None:
    client = H2ClientConnection(stream_window=65_535)
    client.initiate()
    stream_id = client.open_stream(encode_headers(REQUEST), end_stream=True)
    client.receive(h2wire.frame(h2wire.HEADERS, h2wire.END_HEADERS, stream_id, b"\x88"))
    frames = b"".join(h2wire.frame(h2wire.DATA, 0, stream_id, b"d" * 16_000) for _ in range(4))
    client.receive(frames)  # 64,000: inside the window
    with pytest.raises(H2ProtocolError) as raised:
        client.receive(h2wire.frame(h2wire.DATA, 0, stream_id, b"d" * 2_000))
    assert raised.value.code == h2wire.FLOW_CONTROL_ERROR


# Response headers a server sends again and again (so its encoder indexes them and then sends
# one-byte references), among values long enough to evict entries from a 4 kB table.
repeated_headers = st.sampled_from(
    [(b"content-type", b"application/grpc"), (b"grpc-status", b"0"), (b"grpc-status", b"5"),
     (b"x-a", b"1"), (b"x-a", b"2"), (b"x-b", b"b" * 1500), (b"x-c", b"c" * 2500)]
)  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(repeated_headers, max_size=4), st.lists(repeated_headers, max_size=3)),
        min_size=1,
        max_size=25,
    )
)
def test_response_headers_are_what_the_server_sent_call_after_call(
    calls: list[tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]],
) -> None:
    """Many calls on one connection, headers and trailers drawn from a few (so the server's
    HPACK encoder indexes them, then refers to them by index while its table fills, evicts and
    renumbers): every block decodes to what the server sent, the all-indexed blocks we kept
    decoded too."""
    pair = Pair()
    pair.client.initiate()
    pair.pump()
    for headers, trailers in calls:
        stream_id = pair.client.open_stream(encode_headers(REQUEST), end_stream=True)
        pair.pump()
        pair.server.send_headers(stream_id, [(b":status", b"200"), *headers])
        pair.server.send_headers(stream_id, trailers or [(b"grpc-status", b"0")], end_stream=True)
        pair.pump()
        got = [e for e in pair.client_events if isinstance(e, HeadersReceived)][-2:]
        assert [e.stream_id for e in got] == [stream_id, stream_id]
        assert list(got[0].headers) == [(b":status", b"200"), *headers]
        assert list(got[1].headers) == (trailers or [(b"grpc-status", b"0")])
        assert got[1].end_stream
