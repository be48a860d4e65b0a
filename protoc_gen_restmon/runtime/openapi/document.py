"""Descriptors + compiled bindings -> one OpenAPI 3.1.0 document (docs/openapi.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.descriptor_pb2 import FileDescriptorProto

from protoc_gen_restmon.runtime.jsoncodec.options import DEFAULT_OPTIONS, JsonOptions
from protoc_gen_restmon.runtime.openapi import errors
from protoc_gen_restmon.runtime.openapi.comments import Comments, split_summary
from protoc_gen_restmon.runtime.openapi.naming import UniqueNames, operation_id_base, unique_titles
from protoc_gen_restmon.runtime.openapi.parameters import (
    OpenApiPath,
    PathNamer,
    path_parameters,
    query_parameters,
    variables_extension,
)
from protoc_gen_restmon.runtime.openapi.pool import build_pool, find_message
from protoc_gen_restmon.runtime.openapi.scalars import Schema
from protoc_gen_restmon.runtime.openapi.schemas import Schemas, nullable
from protoc_gen_restmon.runtime.specs import Binding, Cardinality

OPENAPI_VERSION: Final = "3.1.0"
HTTP_BODY: Final = "google.api.HttpBody"
NDJSON: Final = "application/x-ndjson"
EVENT_STREAM: Final = "text/event-stream"
API_KEY_SCHEME: Final = "apiKey"
# The methods a path item has fields for; any other kind goes under `x-restmon-methods`.
PATH_ITEM_METHODS: Final = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(frozen=True, slots=True)
class ApiInfo:
    """The document's `info`."""

    title: str = "protoc-gen-restmon API"
    version: str = "0.0.0"
    description: str = ""


class _Builder:
    def __init__(
        self,
        files: Sequence[FileDescriptorProto],
        json_options: JsonOptions,
        error_format: str,
        api_key_services: frozenset[str],
    ) -> None:
        self.pool = build_pool(files)
        self.comments = Comments(files)
        self.schemas = Schemas(self.comments, json_options)
        self.error_format = error_format
        self.api_key_services = api_key_services
        self.paths: dict[str, dict[str, Any]] = {}
        self.namer = PathNamer()
        self.operation_ids = UniqueNames()
        self.tags: dict[str, dict[str, Any]] = {}

    def add(self, binding: Binding) -> None:
        path = self.namer.path(binding)
        operation = self.operation(binding, path)
        item = self.paths.setdefault(path.path, {})
        method = binding.http_method.lower()
        standard = binding.http_method.upper() == binding.http_method
        if standard and method in PATH_ITEM_METHODS and method not in item:
            item[method] = operation
        else:
            # `*` or a custom kind, which OpenAPI has no field for; or a second route of one
            # method and OpenAPI path (`/v1/{name=**}` beside `/v1/{name}`): the gateway tells
            # them apart, OpenAPI cannot.
            extra = item.setdefault("x-restmon-methods", {})
            key = binding.http_method if binding.http_method not in extra else str(binding)
            extra[key] = operation

    def operation(self, binding: Binding, path: OpenApiPath) -> dict[str, Any]:
        request = self._message(binding, binding.request.proto_name)
        response = self._message(binding, binding.response.proto_name)
        method = self._method_descriptor(binding)
        text = self.comments.get(f"{binding.service}.{binding.method}")
        operation: dict[str, Any] = {
            "tags": [self._tag(binding.service)],
            "operationId": self.operation_ids.take(
                operation_id_base(binding.service, binding.method)
            ),
        }
        if text:
            summary, description = split_summary(text)
            operation["summary"] = summary
            if " ".join(description.split()) != summary:  # more than the summary
                operation["description"] = description
        if method is not None and method.GetOptions().deprecated:
            operation["deprecated"] = True
        parameters = path_parameters(binding, path, request, self.schemas)
        parameters += query_parameters(binding, request, self.schemas)
        if parameters:
            operation["parameters"] = parameters
        body = self.request_body(binding, request, path)
        if body is not None:
            operation["requestBody"] = body
        head = binding.http_method == "HEAD"
        operation["responses"] = {
            "200": self.success(binding, response, head),
            **errors.error_responses(has_body=body is not None, head=head),
        }
        if binding.service in self.api_key_services:
            operation["security"] = [{API_KEY_SCHEME: []}]
        operation["x-restmon-grpc"] = binding.grpc_path
        operation["x-restmon-template"] = binding.template
        variables = variables_extension(binding, path)
        if variables:
            operation["x-restmon-variables"] = variables
        return operation

    def _message(self, binding: Binding, proto_name: str) -> Descriptor:
        try:
            return find_message(self.pool, proto_name)
        except KeyError:
            raise ValueError(
                f"{binding}: message {proto_name} is in none of the files given"
            ) from None

    def _method_descriptor(self, binding: Binding) -> Any:
        try:
            service = self.pool.FindServiceByName(binding.service)
        except KeyError:
            return None
        return service.methods_by_name.get(binding.method)

    def _tag(self, service: str) -> str:
        if service not in self.tags:
            tag: dict[str, Any] = {"name": service}
            text = self.comments.get(service)
            if text:
                tag["description"] = text
            self.tags[service] = tag
        return service

    # --- bodies ---

    def request_body(
        self, binding: Binding, request: Descriptor, path: OpenApiPath
    ) -> dict[str, Any] | None:
        if binding.body is None:
            return None
        streaming = binding.cardinality in (Cardinality.STREAM_UNARY, Cardinality.STREAM_STREAM)
        if binding.body.proto == ("*",):
            if request.full_name == HTTP_BODY:
                return _raw_body("The raw request body, of any content type.")
            schema = self._whole_body(binding, request)
        else:
            field = request.fields_by_name[binding.body.proto[0]]
            if field.message_type is not None and field.message_type.full_name == HTTP_BODY:
                return _raw_body(f"The raw `{field.name}`, of any content type.")
            schema = nullable(self._field_body(binding, field))
            schema |= self.schemas.annotations(field)
        if streaming:
            return {
                "description": "Newline-delimited JSON: one request message per line, sent on "
                "as each line arrives.",
                "content": {NDJSON: {"schema": schema}},
            }
        return {"content": {"application/json": {"schema": schema}}}

    def _whole_body(self, binding: Binding, request: Descriptor) -> Schema:
        """`body: "*"`: the message without the top-level fields the path binds."""
        bound = {v.field.proto[0] for v in binding.variables if len(v.field.proto) == 1}
        if not bound:
            return self.schemas.message_ref(request, request=True)
        return self.schemas.message_object(request, request=True, exclude=bound)

    def _field_body(self, binding: Binding, field: FieldDescriptor) -> Schema:
        """`body: "<field>"`: the field's schema; for a message field whose own fields the path
        binds (`{book.name=…}` with `body: "book"`), an object without them, as `body: "*"`
        leaves out the fields the path binds at the body's top level."""
        bound = {
            v.field.proto[1]
            for v in binding.variables
            if len(v.field.proto) == 2 and v.field.proto[0] == field.name
        }
        message = field.message_type
        if not bound or message is None or self.schemas.is_special(message):
            return self.schemas.field_schema(field, request=True)
        return self.schemas.message_object(message, request=True, exclude=bound)

    def success(self, binding: Binding, response: Descriptor, head: bool) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "description": "OK",
            "headers": {errors.REQUEST_ID: {"$ref": "#/components/headers/" + errors.REQUEST_ID}},
        }
        if head:
            return answer
        if response.full_name == HTTP_BODY and binding.response_body is None:
            answer["content"] = {"*/*": {"schema": {}}}
            answer["description"] = "The raw body, with its content type (a google.api.HttpBody)."
            return answer
        schema = self._response_schema(binding, response)
        if binding.cardinality in (Cardinality.UNARY_STREAM, Cardinality.STREAM_STREAM):
            line = {
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {"result": schema},
                        "required": ["result"],
                        "additionalProperties": False,
                    },
                    errors.stream_error_line(self.error_format),
                ]
            }
            answer["description"] = (
                'A stream: one `{"result": …}` line per message, a final `{"error": …}` line '
                "if the stream fails after its first message. Server-Sent Events when `Accept` "
                "prefers `text/event-stream`."
            )
            answer["content"] = {
                NDJSON: {"schema": line},
                EVENT_STREAM: {
                    "schema": {"type": "string"},
                    "x-restmon-event-data": line,
                },
            }
            return answer
        answer["content"] = {"application/json": {"schema": schema}}
        return answer

    def _response_schema(self, binding: Binding, response: Descriptor) -> Schema:
        if binding.response_body is None:
            return self.schemas.message_ref(response, request=False)
        field: FieldDescriptor = response.fields_by_name[binding.response_body.proto[0]]
        schema = self.schemas.field_schema(field, request=False)
        # field_to_json writes null for an unset field (or a default without emit_unpopulated).
        if field.has_presence or not self.schemas.options.emit_unpopulated:
            schema = nullable(schema)
        return schema | self.schemas.annotations(field)

    # --- the document ---

    def document(self, info: ApiInfo) -> dict[str, Any]:
        error_name = errors.error_component_name(self.error_format)
        any_type = self.pool.FindMessageTypeByName("google.protobuf.Any")
        self.schemas.message_ref(any_type, request=False)
        schemas = self.schemas.components()
        schemas[error_name] = errors.error_body_schema(self.error_format)
        components: dict[str, Any] = {
            "schemas": unique_titles(dict(sorted(schemas.items()))),
            "responses": errors.response_components(self.error_format),
            "headers": {errors.REQUEST_ID: errors.request_id_header()},
        }
        if self.api_key_services:
            components["securitySchemes"] = {
                API_KEY_SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Api-Key",
                    "description": "An API key of the monitor (methods that require one).",
                }
            }
        info_object: dict[str, Any] = {"title": info.title, "version": info.version}
        if info.description:
            info_object["description"] = info.description
        return {
            "openapi": OPENAPI_VERSION,
            "info": info_object,
            "tags": list(self.tags.values()),
            "paths": self.paths,
            "components": components,
        }


def _raw_body(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"*/*": {"schema": {}}}}


def build_document(
    files: Sequence[FileDescriptorProto],
    bindings: Sequence[Binding],
    *,
    info: ApiInfo = ApiInfo(),
    json_options: JsonOptions = DEFAULT_OPTIONS,
    error_format: str = "status",
    api_key_services: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The OpenAPI 3.1.0 document of `bindings`, JSON-ready, keys in a deterministic order.

    `files`: every file the bindings' messages need, imports included (dependencies first);
    comments come from their `source_code_info`. Pure: no I/O, no generated code imported.
    """
    if error_format not in ("status", "google"):
        raise ValueError(f"error_format must be 'status' or 'google', not {error_format!r}")
    builder = _Builder(files, json_options, error_format, api_key_services)
    for binding in bindings:
        builder.add(binding)
    return builder.document(info)
