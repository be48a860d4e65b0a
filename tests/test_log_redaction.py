"""hpack's DEBUG log, with the redaction filter on: real header blocks encoded and decoded by
hpack itself, every record formatted as a log file would have it. Sensitive values never
appear; every other header's value does (so the search can see what it looks for)."""

from __future__ import annotations

import logging
import string
from collections.abc import Iterator
from contextlib import contextmanager

import hpack
from hypothesis import given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.log_redaction import (
    HPACK_LOGGERS,
    SENSITIVE_HEADERS,
    redact_header_logs,
)


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def hpack_log() -> Iterator[Lines]:
    """hpack's records at DEBUG, with the filter on (as a Monitor or a Gateway turns it on)."""
    redact_header_logs()
    handler = Lines()
    loggers = [logging.getLogger(name) for name in HPACK_LOGGERS]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger, level in zip(loggers, saved, strict=True):
            logger.setLevel(level)
            logger.removeHandler(handler)


# Values long and distinctive enough not to occur in a log line by chance; a secret has a
# lower-case letter and a plain value has none, so neither is ever part of the other.
secrets = st.text(string.ascii_lowercase + string.digits, min_size=12, max_size=40).map(
    lambda s: "s" + s
)
plain_values = st.text(string.ascii_uppercase + string.digits, min_size=12, max_size=40)
sensitive_names = st.sampled_from(sorted(SENSITIVE_HEADERS)).flatmap(
    lambda name: st.sampled_from([name, name.upper(), name.title()])
)
plain_names = st.sampled_from([":path", "content-type", "x-request-id", "grpc-timeout"])


@settings(max_examples=60, deadline=None)
@given(
    secret_headers=st.lists(st.tuples(sensitive_names, secrets), min_size=1),
    plain_headers=st.lists(st.tuples(plain_names, plain_values), min_size=1),
    huffman=st.booleans(),
    table_size=st.sampled_from([0, 64, 4096]),
)
def test_sensitive_values_never_reach_the_log(
    secret_headers: list[tuple[str, str]],
    plain_headers: list[tuple[str, str]],
    huffman: bool,
    table_size: int,
) -> None:
    headers = plain_headers + secret_headers
    encoder, decoder = hpack.Encoder(), hpack.Decoder()
    # A small table makes hpack evict (and log) entries; 0 keeps nothing.
    encoder.header_table_size = decoder.header_table.maxsize = table_size
    with hpack_log() as log:
        for _ in range(2):  # the second time, headers come from the table
            block = encoder.encode(headers, huffman=huffman)
            assert decoder.decode(block) == headers
    text = "\n".join(log.lines)
    for _, value in secret_headers:
        assert value not in text
    for _, value in plain_headers:
        assert value in text
    assert "<redacted>" in text


def test_filter_is_attached_once() -> None:
    redact_header_logs()
    redact_header_logs()
    for name in HPACK_LOGGERS:
        assert len(logging.getLogger(name).filters) == 1
