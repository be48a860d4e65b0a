"""The failures the fakes raise: grpclib errors with google.rpc details (AIP-193).

Details are google.rpc protobuf messages: grpclib's server encodes them into
`grpc-status-details-bin` (proxy mode), the in-process gateway renders them itself.
"""

from __future__ import annotations

from google.rpc import error_details_pb2
from grpclib import GRPCError
from grpclib.const import Status


def not_found(resource_type: str, name: str) -> GRPCError:
    """NOT_FOUND with a ResourceInfo naming the resource."""
    info = error_details_pb2.ResourceInfo(
        resource_type=resource_type, resource_name=name, description="not found"
    )
    return GRPCError(Status.NOT_FOUND, f"{resource_type} {name} does not exist.", [info])


def already_exists(domain: str, resource_type: str, name: str) -> GRPCError:
    """ALREADY_EXISTS with an ErrorInfo (reason, domain, metadata), which clients expose."""
    info = error_details_pb2.ErrorInfo(
        reason="RESOURCE_ALREADY_EXISTS", domain=domain, metadata={"resource": name}
    )
    return GRPCError(Status.ALREADY_EXISTS, f"{resource_type} {name} already exists.", [info])


def invalid_argument(field: str, description: str) -> GRPCError:
    """INVALID_ARGUMENT with a BadRequest naming the field."""
    violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
    bad_request = error_details_pb2.BadRequest(field_violations=[violation])
    return GRPCError(Status.INVALID_ARGUMENT, f"Invalid {field}: {description}", [bad_request])
