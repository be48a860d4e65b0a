"""Field numbers of descriptor.proto, as SourceCodeInfo.Location paths spell them.

A location's path is a list of field numbers and indexes from the FileDescriptorProto down to an
element: `(SERVICE, 0, METHOD, 2)` is the third method of the first service. The printer, the
plugin's line lookups and its betterproto bridge all build such paths; they take the numbers from
here, which reads them from descriptor_pb2 itself.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2 as d

# FileDescriptorProto
FILE_PACKAGE = d.FileDescriptorProto.PACKAGE_FIELD_NUMBER  # 2
FILE_DEPENDENCY = d.FileDescriptorProto.DEPENDENCY_FIELD_NUMBER  # 3
FILE_MESSAGE = d.FileDescriptorProto.MESSAGE_TYPE_FIELD_NUMBER  # 4
FILE_ENUM = d.FileDescriptorProto.ENUM_TYPE_FIELD_NUMBER  # 5
FILE_SERVICE = d.FileDescriptorProto.SERVICE_FIELD_NUMBER  # 6
FILE_EXTENSION = d.FileDescriptorProto.EXTENSION_FIELD_NUMBER  # 7
FILE_OPTIONS = d.FileDescriptorProto.OPTIONS_FIELD_NUMBER  # 8
FILE_SYNTAX = d.FileDescriptorProto.SYNTAX_FIELD_NUMBER  # 12

# DescriptorProto (a message)
MESSAGE_FIELD = d.DescriptorProto.FIELD_FIELD_NUMBER  # 2
MESSAGE_NESTED = d.DescriptorProto.NESTED_TYPE_FIELD_NUMBER  # 3
MESSAGE_ENUM = d.DescriptorProto.ENUM_TYPE_FIELD_NUMBER  # 4
MESSAGE_EXTENSION_RANGE = d.DescriptorProto.EXTENSION_RANGE_FIELD_NUMBER  # 5
MESSAGE_EXTENSION = d.DescriptorProto.EXTENSION_FIELD_NUMBER  # 6
MESSAGE_OPTIONS = d.DescriptorProto.OPTIONS_FIELD_NUMBER  # 7
MESSAGE_ONEOF = d.DescriptorProto.ONEOF_DECL_FIELD_NUMBER  # 8
MESSAGE_RESERVED_RANGE = d.DescriptorProto.RESERVED_RANGE_FIELD_NUMBER  # 9
MESSAGE_RESERVED_NAME = d.DescriptorProto.RESERVED_NAME_FIELD_NUMBER  # 10

ONEOF_OPTIONS = d.OneofDescriptorProto.OPTIONS_FIELD_NUMBER  # 2

# EnumDescriptorProto
ENUM_VALUE = d.EnumDescriptorProto.VALUE_FIELD_NUMBER  # 2
ENUM_OPTIONS = d.EnumDescriptorProto.OPTIONS_FIELD_NUMBER  # 3
ENUM_RESERVED_RANGE = d.EnumDescriptorProto.RESERVED_RANGE_FIELD_NUMBER  # 4
ENUM_RESERVED_NAME = d.EnumDescriptorProto.RESERVED_NAME_FIELD_NUMBER  # 5

# ServiceDescriptorProto and MethodDescriptorProto
SERVICE_METHOD = d.ServiceDescriptorProto.METHOD_FIELD_NUMBER  # 2
SERVICE_OPTIONS = d.ServiceDescriptorProto.OPTIONS_FIELD_NUMBER  # 3
METHOD_OPTIONS = d.MethodDescriptorProto.OPTIONS_FIELD_NUMBER  # 4
