"""gRPC status codes, their HTTP statuses (docs/http-transcoding.md §5), the runtime's error, and
google.rpc.Status details in proto3 JSON."""

from __future__ import annotations

import base64
from enum import IntEnum
from typing import Any

from google.protobuf import any_pb2, json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

# The google.rpc error details (BadRequest, ErrorInfo, RetryInfo, …) are rendered by name: the
# import registers them in the default descriptor pool, where the Any JSON mapping looks.
KNOWN_DETAILS = error_details_pb2.DESCRIPTOR


class Code(IntEnum):
    """google.rpc.Code."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# docs/http-transcoding.md §5. FAILED_PRECONDITION is 400 (not 412) and CANCELLED is 499, as
# grpc-gateway and google.rpc.Code's own comments have it.
HTTP_STATUS: dict[Code, int] = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}


def http_status_for(code: int) -> int:
    """The HTTP status for a gRPC code; codes outside google.rpc.Code are 500."""
    try:
        return HTTP_STATUS[Code(code)]
    except ValueError:
        return 500


class RpcError(Exception):
    """A failure with a gRPC status; the gateway writes it as a google.rpc.Status JSON body.

    `http_status` overrides the table where HTTP has a more precise answer than the code
    (405 for a known path with an unknown method, 413 for a body over the limit, 415 for a
    body that is not JSON). `headers` are added to the response (`Allow`, `WWW-Authenticate`).
    """

    def __init__(
        self,
        code: Code,
        message: str,
        *,
        http_status: int | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        details: tuple[object, ...] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status if http_status is not None else http_status_for(code)
        self.headers = headers
        self.details = details


def status_details(data: bytes) -> tuple[dict[str, Any], ...]:
    """The details of a serialized google.rpc.Status (`grpc-status-details-bin`) as JSON."""
    try:
        status = status_pb2.Status.FromString(data)
    except DecodeError:
        return ()
    return tuple(any_json(item) for item in status.details)


def detail_json(detail: Message) -> dict[str, Any]:
    """One error detail as an `Any` in proto3 JSON: `{"@type": "type.googleapis.com/…", …}`."""
    if isinstance(detail, any_pb2.Any):
        return any_json(detail)
    packed = any_pb2.Any()
    packed.Pack(detail)
    return any_json(packed)


def any_json(item: any_pb2.Any) -> dict[str, Any]:
    """An `Any` in proto3 JSON; a type this process does not know (or bytes that are not that
    type) keeps its bytes: `{"@type": url, "value": <base64>}`, as the Any JSON mapping has it."""
    try:
        rendered: dict[str, Any] = json_format.MessageToDict(item)
    except (TypeError, KeyError, DecodeError, json_format.Error):
        rendered = {}
    if "@type" not in rendered:  # json_format writes an Any without type_url as `{}`
        return {"@type": item.type_url, "value": base64.b64encode(item.value).decode("ascii")}
    return rendered
