"""Request ids the runtime makes for calls that came without one: UUIDs version 7 (RFC 9562)."""

from __future__ import annotations

import random
import subprocess
import sys
import time
import uuid

from hypothesis import given
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.gateway.observe import new_request_id
from tests.support.gateway_fixtures import UUID


def unix_ms_of(request_id: str) -> int:
    """The timestamp of a version 7 UUID: its 48 most significant bits."""
    return uuid.UUID(request_id).int >> 80


@given(st.integers(min_value=0, max_value=2**48 - 1))
def test_new_request_id_is_a_version_7_uuid_dated_as_asked(unix_ms: int) -> None:
    request_id = new_request_id(unix_ms)

    parsed = uuid.UUID(request_id)
    assert str(parsed) == request_id  # canonical: lower case, 8-4-4-4-12
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert unix_ms_of(request_id) == unix_ms
    assert UUID.fullmatch(request_id)


def test_new_request_id_is_dated_now_by_default() -> None:
    before = time.time_ns() // 1_000_000
    request_id = new_request_id()
    after = time.time_ns() // 1_000_000

    assert before <= unix_ms_of(request_id) <= after


def test_new_request_ids_sort_by_time() -> None:
    ids = [new_request_id(ms) for ms in (1, 2, 1_000, 2**40, 2**48 - 1)]

    assert sorted(ids) == ids


def test_new_request_id_random_bits_vary() -> None:
    # 74 random bits: in 10,000 ids of one millisecond, every bit position takes both values.
    ids = {uuid.UUID(new_request_id(7)).int for _ in range(10_000)}

    assert len(ids) == 10_000
    fixed = (0xFFFF_FFFF_FFFF << 80) | (0xF << 76) | (0b11 << 62)
    assert {i & fixed for i in ids} == {(7 << 80) | (0x7 << 76) | (0b10 << 62)}
    varying = 0
    for i in ids:
        varying |= i ^ next(iter(ids))
    assert varying == ((1 << 128) - 1) & ~fixed


def test_seeding_the_random_module_does_not_repeat_ids() -> None:
    random.seed(1234)
    first = new_request_id(5)
    random.seed(1234)

    assert new_request_id(5) != first


# Forks in a fresh interpreter: forking pytest's own process, which may hold threads by then,
# is unsafe (and a DeprecationWarning from Python 3.12 on).
FORK = """\
import os
from protoc_gen_restmon.runtime.gateway.observe import new_request_id
new_request_id(5)
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write_end, new_request_id(5).encode())
    os._exit(0)
os.close(write_end)
parent = new_request_id(5)
child = os.fdopen(read_end).read()
os.waitpid(pid, 0)
print(parent, child)
"""


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FORK], capture_output=True, text=True, check=True
    )
    parent, child = result.stdout.split()

    assert UUID.fullmatch(parent) and UUID.fullmatch(child)
    assert child != parent
