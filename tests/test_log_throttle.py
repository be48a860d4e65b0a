"""Repeating log records, once per interval with a count (runtime/log_throttle.py)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

from protoc_gen_restmon.runtime.log_throttle import THROTTLED_LOGGERS, LogThrottle

PACKAGE = Path(__file__).resolve().parents[1] / "protoc_gen_restmon"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(message: str, *args: object, error: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(error), error, None) if error is not None else None
    return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, args, exc_info)


def test_log_throttle_writes_a_repeat_once_per_interval_with_the_count() -> None:
    clock = Clock()
    throttle = LogThrottle(10.0, clock)
    error = OSError(24, "Too many open files")
    first = record("socket.accept() out of system resource\nsocket: <fd=7>", error=error)
    assert throttle.filter(first)
    assert first.exc_info is not None  # the first one as it was, traceback and all
    kept = []
    for step in range(1, 1000):
        clock.now = step * 0.025
        each = record("socket.accept() out of system resource\nsocket: <fd=7>", error=error)
        if throttle.filter(each):
            kept.append(each)
    assert len(kept) == 2  # at 10 s and at 20 s
    assert kept[0].getMessage() == (
        "socket.accept() out of system resource [OSError: [Errno 24] Too many open files] "
        "(399 more like this in the last 10 s)"
    )
    assert kept[0].exc_info is None


def test_log_throttle_keys_by_message_template_and_passes_info() -> None:
    throttle = LogThrottle(10.0, Clock())
    assert throttle.filter(record("store failed on %s", "/a"))
    assert not throttle.filter(record("store failed on %s", "/b"))  # same template
    assert throttle.filter(record("another failure"))
    info = record("serving")
    info.levelno = logging.INFO
    assert throttle.filter(info) and throttle.filter(info)


def test_every_project_logger_is_throttled_when_serving() -> None:
    named = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "getLogger":
                argument = node.args[0] if node.args else None
                if isinstance(argument, ast.Constant):
                    named.add(argument.value)
                elif isinstance(argument, ast.Name) and argument.id == "__name__":
                    module = path.relative_to(PACKAGE.parent).with_suffix("")
                    named.add(".".join(module.parts))
    assert named - {"name"} <= set(THROTTLED_LOGGERS)  # log_redaction's loop variable
