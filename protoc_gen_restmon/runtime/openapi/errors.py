"""The error responses every operation lists (docs/http-transcoding.md §5) and their bodies."""

from __future__ import annotations

from typing import Any, Final

from protoc_gen_restmon.runtime.openapi.scalars import Schema

ERROR_RESPONSES: Final = "#/components/responses/"
REQUEST_ID: Final = "X-Request-Id"

# HTTP status -> the gRPC codes behind it (§5's table), for the response's description.
STATUS_CODES: Final = {
    400: "INVALID_ARGUMENT (a malformed request, or the method's own), FAILED_PRECONDITION, "
    "OUT_OF_RANGE",
    401: "UNAUTHENTICATED (sets `WWW-Authenticate`)",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS, ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "UNKNOWN, INTERNAL, DATA_LOSS, or any code outside google.rpc.Code",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE (in proxy mode also an upstream that cannot be reached)",
    504: "DEADLINE_EXCEEDED",
}
BODY_STATUS_CODES: Final = {
    413: "RESOURCE_EXHAUSTED: the request body is over the gateway's limit",
    415: "INVALID_ARGUMENT: the request body is not JSON",
}

_DETAILS: Final = {
    "type": "array",
    "items": {"$ref": "#/components/schemas/google.protobuf.Any"},
    "description": "Error details, each an `Any` in proto3 JSON with its `@type`.",
}


def status_schema() -> Schema:
    """google.rpc.Status as the gateway writes it: all three keys, always."""
    return {
        "title": "Status",
        "description": "google.rpc.Status: a gRPC code, a message and details.",
        "type": "object",
        "properties": {
            "code": {"type": "integer", "format": "int32", "description": "A google.rpc.Code."},
            "message": {"type": "string"},
            "details": _DETAILS,
        },
        "required": ["code", "message", "details"],
        "additionalProperties": False,
    }


def google_error_schema() -> Schema:
    """AIP-193's body, `error_format="google"`."""
    return {
        "title": "Error",
        "description": "AIP-193: the HTTP status, the message, the gRPC code's name, details.",
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "integer", "description": "The HTTP status."},
                    "message": {"type": "string"},
                    "status": {"type": "string", "description": "The google.rpc.Code name."},
                    "details": _DETAILS,
                },
                "required": ["code", "message", "status", "details"],
                "additionalProperties": False,
            }
        },
        "required": ["error"],
        "additionalProperties": False,
    }


def error_component_name(error_format: str) -> str:
    return "google.rpc.Status" if error_format == "status" else "restmon.GoogleError"


def error_body_schema(error_format: str) -> Schema:
    return status_schema() if error_format == "status" else google_error_schema()


def stream_error_line(error_format: str) -> Schema:
    """The last line of a failed stream: `{"error": <Status>}`, or the AIP-193 body as is."""
    ref = {"$ref": "#/components/schemas/" + error_component_name(error_format)}
    if error_format == "google":
        return ref
    return {
        "type": "object",
        "properties": {"error": ref},
        "required": ["error"],
        "additionalProperties": False,
    }


def response_components(error_format: str) -> dict[str, Any]:
    """`components/responses`: one error response per HTTP status the gateway answers."""
    body = {"$ref": "#/components/schemas/" + error_component_name(error_format)}
    responses: dict[str, Any] = {}
    for status, why in sorted({**STATUS_CODES, **BODY_STATUS_CODES}.items()):
        headers: dict[str, Any] = {REQUEST_ID: {"$ref": "#/components/headers/" + REQUEST_ID}}
        if status == 401:
            headers["WWW-Authenticate"] = {
                "description": 'The challenge, `Bearer realm="restmon"` unless the error brings '
                "its own.",
                "schema": {"type": "string"},
            }
        responses[f"Error{status}"] = {
            "description": why,
            "headers": headers,
            "content": {"application/json": {"schema": body}},
        }
    return responses


def error_responses(*, has_body: bool, head: bool) -> dict[str, Any]:
    """An operation's error responses; a HEAD answer has no body (only its status)."""
    codes = sorted({**STATUS_CODES, **(BODY_STATUS_CODES if has_body else {})})
    if head:
        return {str(code): {"description": STATUS_CODES.get(code, "")} for code in codes}
    return {str(code): {"$ref": f"{ERROR_RESPONSES}Error{code}"} for code in codes}


def request_id_header() -> dict[str, Any]:
    return {
        "description": "The request's id: the client's `X-Request-Id` when it is printable ASCII "
        "of at most 128 characters, else a new UUID.",
        "schema": {"type": "string"},
    }
