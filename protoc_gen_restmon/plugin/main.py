"""The plugin's entry point: a CodeGeneratorRequest on stdin, a CodeGeneratorResponse on stdout."""

from __future__ import annotations

import sys
import traceback

# Imported for their side effect: without them, upb drops the google.api.http and
# google.api.default_host extensions while parsing.
from google.api import annotations_pb2, client_pb2  # noqa: F401
from google.protobuf.compiler.plugin_pb2 import CodeGeneratorRequest, CodeGeneratorResponse

from protoc_gen_restmon.plugin.errors import GenerationError


def run(raw_request: bytes) -> CodeGeneratorResponse:
    """Everything the plugin does, without touching stdin or stdout."""
    from protoc_gen_restmon.plugin.generate import generate

    response = CodeGeneratorResponse(
        supported_features=CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    request = CodeGeneratorRequest.FromString(raw_request)
    try:
        files = generate(request, raw_request)
    except GenerationError as err:
        response.error = str(err)
        return response
    except Exception:  # a bug of ours: say so, and still let protoc fail cleanly
        response.error = (
            "protoc-gen-restmon internal error (please report):\n" + traceback.format_exc()
        )
        return response
    response.file.extend(CodeGeneratorResponse.File(name=n, content=c) for n, c in files)
    return response


def main() -> None:
    response = run(sys.stdin.buffer.read())
    sys.stdout.buffer.write(response.SerializeToString())


if __name__ == "__main__":
    main()
