"""What the gateway tells an observer (the monitor) about each call it serves.

The gateway knows nothing of stores or keys: it describes a call (`CallInfo`), asks the
observer to begin it (which may refuse it with an `RpcError`, e.g. UNAUTHENTICATED for a
missing API key), and reports how it ended. `NO_OBSERVER` does nothing.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from typing import Protocol

from protoc_gen_restmon.runtime.specs import Cardinality
from protoc_gen_restmon.runtime.status import Code

# CallInfo.grpc_type of each cardinality: the words of the grpc_type label of gRPC's server
# metrics (go-grpc-prometheus's grpc_server_handled_total, …), which the monitor counts.
GRPC_TYPES: dict[Cardinality, str] = {
    Cardinality.UNARY_UNARY: "unary",
    Cardinality.STREAM_UNARY: "client_stream",
    Cardinality.UNARY_STREAM: "server_stream",
    Cardinality.STREAM_STREAM: "bidi_stream",
}


@dataclass(slots=True)
class CallInfo:
    """One call as it arrives, over gRPC or over the REST gateway.

    Built once per call on the hot path, hence not frozen (a frozen dataclass costs about
    three times as much to build); nothing changes it after `begin`."""

    service: str  # full name, e.g. bookstore.v1.Bookstore
    method: str  # e.g. GetBook
    transport: str  # "grpc" | "http"
    request_id: str
    peer: str = ""  # the transport peer, "host:port"
    client_ip: str = ""  # the peer's address, or the trusted X-Forwarded-For client
    user_agent: str = ""
    http_method: str = ""
    http_path: str = ""
    # Request metadata / headers, keys lower-case (x-api-key, authorization, …).
    metadata: tuple[tuple[str, str], ...] = ()
    # A word of GRPC_TYPES (unary, client_stream, …); "" when the observer knows the method.
    grpc_type: str = ""

    def get(self, key: str) -> str | None:
        for name, value in self.metadata:
            if name == key:
                return value
        return None


def given_request_id(value: object) -> str | None:
    """A client's x-request-id, if it is fit to record and to send back: printable ASCII (it
    is echoed as a header and forwarded as metadata), at most 128 characters."""
    if isinstance(value, str) and 0 < len(value) <= 128 and value.isascii():
        return value if value.isprintable() else None
    return None


# A UUID version 7 (RFC 9562 §5.7), bit 127 first: 48 bits of Unix time in milliseconds, the
# version (0b0111), 12 random bits, the variant (0b10), 62 random bits.
_V7_FIXED_MASK = (0xF << 76) | (0b11 << 62)  # where the version and the variant go
_V7_FIXED = (0x7 << 76) | (0b10 << 62)
# Its own generator: a program's random.seed(…) must not make ids repeat; drawn again in a
# forked child (as the random module does for its own), so two workers never share a sequence.
_RANDOM = random.Random()
os.register_at_fork(after_in_child=_RANDOM.seed)


def new_request_id(unix_ms: int | None = None) -> str:
    """A request id for a call that came without a usable one: a UUID version 7, dated
    `unix_ms` (milliseconds since the epoch; default now).

    Version 7 rather than 4: ids sort by the time their calls arrived (to the millisecond),
    like the request log that records them, and new ones go to the end of an index. 74 random
    bits per millisecond make a collision negligible; within one millisecond the order is
    random (RFC 9562 makes monotonicity optional). One getrandbits() call and integer
    arithmetic: cheaper than `str(uuid.uuid4())`, which reads os.urandom and builds a UUID.
    """
    if unix_ms is None:
        unix_ms = time.time_ns() // 1_000_000
    h = f"{unix_ms << 80 | (_RANDOM.getrandbits(80) & ~_V7_FIXED_MASK) | _V7_FIXED:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Observation(Protocol):
    """One call being observed; `finish` is called exactly once, however the call ends."""

    def finish(self, code: Code, message: str = "") -> None: ...


class Observer(Protocol):
    def begin(self, info: CallInfo) -> Observation:
        """Start observing a call; raise `RpcError` to refuse it (it is still recorded)."""
        ...


class _Nothing:
    def begin(self, info: CallInfo) -> _Nothing:
        return self

    def finish(self, code: Code, message: str = "") -> None:
        return None


NO_OBSERVER: Observer = _Nothing()
