"""gRPC status codes, their HTTP statuses (http-transcoding.md §5), and the runtime's error."""

from __future__ import annotations

from enum import IntEnum


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


# http-transcoding.md §5. FAILED_PRECONDITION is 400 (not 412) and CANCELLED is 499, as
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
        self.status = http_status if http_status is not None else http_status_for(code)
        self.headers = headers
        self.details = details
