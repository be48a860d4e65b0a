"""Keeps credentials out of hpack's DEBUG log.

grpclib speaks HTTP/2 through h2, whose header compression library, hpack, logs at DEBUG every
header it decodes, every header it adds to or evicts from its table, and every raw header block
it decodes or encodes. `x-api-key` and `authorization` are among those headers, so turning DEBUG
on to diagnose a server would write API keys and admin tokens to the log (in a raw block they are
at most Huffman-coded, which anyone can undo). The filter below rewrites hpack's records as they
are made: a sensitive header's value becomes `<redacted>`, a raw header block becomes its length.
Everything else hpack logs stays as it was.

The filter is attached to hpack's own loggers, since a logger's filters see only the records
made on it. It costs nothing unless DEBUG is on for them: hpack's `log.debug` returns before a
record exists. A logging configuration that names these loggers itself replaces their filters;
`redact_header_logs()` can be called again after it.
"""

from __future__ import annotations

import logging

SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "cookie", "set-cookie"}
)
HPACK_LOGGERS = ("hpack.hpack", "hpack.table")
REDACTED = "<redacted>"


class HeaderRedactor(logging.Filter):
    """Rewrites the arguments of hpack's records; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = redact_args(record.args)
        return True


def redact_header_logs() -> None:
    """Attach the filter to hpack's loggers (once: calling again does nothing more)."""
    for name in HPACK_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, HeaderRedactor) for f in logger.filters):
            logger.addFilter(HeaderRedactor())


def redact_args(args: tuple[object, ...]) -> tuple[object, ...]:
    """hpack's records come in three shapes: a header block alone ("Decoding %s"), a name then
    its value ("Adding %s=%s ...", "Evicting %s: %s ..."), or a decoded (name, value) pair
    among other values ("Decoded %s, consumed %d")."""
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray, memoryview)):
        return (f"<{len(args[0])} bytes of headers>",)
    if len(args) >= 2 and _is_sensitive(args[0]):
        return (args[0], REDACTED, *args[2:])
    return tuple(_redact_pair(arg) for arg in args)


def _redact_pair(arg: object) -> object:
    if isinstance(arg, tuple) and len(arg) == 2 and _is_sensitive(arg[0]):
        return (arg[0], REDACTED)
    return arg


def _is_sensitive(name: object) -> bool:
    if isinstance(name, (bytes, bytearray)):
        name = bytes(name).decode("latin-1")
    return isinstance(name, str) and name.lower() in SENSITIVE_HEADERS
