"""Error details: an upstream status with `grpc-status-details-bin` becomes a Status JSON body
whose `details` are the decoded `Any` messages (proto3 JSON, `@type` first).

The upstream is a real grpclib server in its own process (tests/support/upstream_process.py) raising
`GRPCError(details=[…])`; in-process handlers' details are checked too.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from hypothesis import given
from hypothesis import strategies as st

from examples.bookstore import make_service
from protoc_gen_restmon.runtime.gateway.app import Gateway
from protoc_gen_restmon.runtime.status import any_json, status_details
from tests.support.proxy_fixtures import proxy_call
from tests.support.upstream_process import UpstreamProcess

TYPE = "type.googleapis.com/"
BAD_REQUEST = {
    "@type": TYPE + "google.rpc.BadRequest",
    "fieldViolations": [{"field": "shelf", "description": "no such shelf"}],
}
ERROR_INFO = {
    "@type": TYPE + "google.rpc.ErrorInfo",
    "reason": "SHELF_MISSING",
    "domain": "bookstore.example",
}
# restmon.test.Secret{code: 7}: field 1, varint 7 -> bytes 08 07, base64 "CAc=".
UNKNOWN = {"@type": TYPE + "restmon.test.Secret", "value": "CAc="}


@pytest.fixture(name="upstream", scope="module")
def fixture_upstream(
    bookstore_pb: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UpstreamProcess]:
    with UpstreamProcess(bookstore_pb, tmp_path_factory.mktemp("details") / "events.log") as up:
        yield up


def test_upstream_error_details_are_in_the_status_body(
    bookstore_pb: ModuleType, upstream: UpstreamProcess
) -> None:
    gateway = Gateway(upstream=upstream.address, packages=[bookstore_pb])
    reply = proxy_call(gateway, "GET", "/v1/shelves/details")
    assert reply.status == 400
    assert reply.json() == {
        "code": 3,
        "message": "bad shelf",
        "details": [BAD_REQUEST, ERROR_INFO, UNKNOWN],
    }


def test_upstream_stream_error_line_carries_details(
    bookstore_pb: ModuleType, upstream: UpstreamProcess
) -> None:
    gateway = Gateway(upstream=upstream.address, packages=[bookstore_pb])
    reply = proxy_call(gateway, "GET", "/v1/shelves/details:watch")
    first, last = reply.lines()
    assert first["result"]["shelf"] == "shelves/details"
    assert last == {
        "error": {"code": 9, "message": "shelf gone", "details": [BAD_REQUEST, ERROR_INFO]}
    }


def test_in_process_handler_error_details_are_in_the_status_body(bookstore_pb: ModuleType) -> None:
    base: type = type(make_service(bookstore_pb))

    class Refusing(base):  # type: ignore[misc]
        async def get_shelf(self, request: Any) -> Any:
            violation = error_details_pb2.BadRequest.FieldViolation(
                field="shelf", description="no such shelf"
            )
            details = [error_details_pb2.BadRequest(field_violations=[violation])]
            raise GRPCError(Status.INVALID_ARGUMENT, "bad shelf", details)

    reply = proxy_call(Gateway([Refusing()]), "GET", "/v1/shelves/x")
    assert reply.json() == {"code": 3, "message": "bad shelf", "details": [BAD_REQUEST]}


def test_status_details_of_bytes_that_are_no_status_are_none() -> None:
    assert status_details(b"\xff\xff\xff") == ()


def test_status_details_decodes_every_any() -> None:
    packed = any_pb2.Any()
    packed.Pack(error_details_pb2.RetryInfo(retry_delay={"seconds": 2}))
    status = status_pb2.Status(code=14, message="later", details=[packed])
    assert status_details(status.SerializeToString()) == (
        {"@type": TYPE + "google.rpc.RetryInfo", "retryDelay": "2s"},
    )


@given(
    st.one_of(
        st.sampled_from([TYPE + "google.rpc.ErrorInfo", TYPE + "google.rpc.BadRequest"]),
        st.text(max_size=40),
    ),
    st.binary(max_size=40),
)
def test_any_json_renders_any_any(type_url: str, value: bytes) -> None:
    """Known type and valid bytes: its fields; anything else: its bytes, never an exception."""
    rendered = any_json(any_pb2.Any(type_url=type_url, value=value))
    assert rendered["@type"] == type_url
    if set(rendered) == {"@type", "value"}:  # kept as bytes
        assert base64.b64decode(rendered["value"]) == value
