"""The example Bookstore on a real grpcio (`grpc.aio`) server, for the proxy conformance backend.

- `grpcio_classes(root)`: `grpc_tools.protoc --python_out --grpc_python_out` on the example protos
  into `root`, put on sys.path (the generated modules import `bookstore.v1.…` absolutely).
- `make_grpcio_test_servicer()`: examples/bookstore_grpcio.py with the failures of
  `make_test_service` (tests/support/gateway_fixtures.py), recording what its handlers get and
  return as `Received` (wire bytes from upb), so `Served.requests()` works the same on it.
- `grpcio_backend(root)`: a `ProxyBackend` in front of a grpc.aio server in a thread, forwarding to
  a fresh recording servicer per test.

grpc.aio cannot send a status outside `grpc.StatusCode`: `fail-99` fails with a plain
exception, which grpc.aio reports as UNKNOWN.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
from betterproto.casing import safe_snake_case
from google.rpc import status_pb2
from grpclib import GRPCError

from examples.bookstore_grpcio import make_servicer
from tests.support.gateway_fixtures import (
    DETAILED_FAILURE,
    FAILURE_DETAILS,
    SECRET,
    STREAM_FAILURES,
    Received,
)
from tests.support.protoc_tools import EXAMPLE_FILES, PROTOS, protoc
from tests.support.proxy_fixtures import ProxyBackend

PACKAGE = "bookstore.v1"
SERVICE = "bookstore.v1.BookstoreService"
CODES = {code.value[0]: code for code in grpc.StatusCode}
# grpc.aio reports a servicer's exception as UNKNOWN with its type and text: internals reach the
# gateway's client (the gateway forwards an upstream's status as it is).
INTERNAL = (2, r"Unexpected <class '\w+'>: .+")


@contextlib.contextmanager
def grpcio_classes(root: Path) -> Iterator[None]:
    """Generate the example protos' grpcio classes into `root` and make them importable."""
    result = protoc(
        [f"-I{PROTOS}", f"--python_out={root}", f"--grpc_python_out={root}"]
        + [str(PROTOS / file) for file in EXAMPLE_FILES]
    )
    if result.returncode:
        raise AssertionError(f"protoc --python_out failed: {result.stderr}")
    top = {file.split("/")[0] for file in EXAMPLE_FILES}  # bookstore, common
    # Other fixtures (tests/support/runtime_fixtures.py) import the same protos' --python_out
    # modules under the same names, without the _grpc modules: set them aside, and restore them
    # after.
    saved = {m: sys.modules.pop(m) for m in list(sys.modules) if m.split(".")[0] in top}
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(str(root))
        for module in [m for m in sys.modules if m.split(".")[0] in top]:
            del sys.modules[module]
        sys.modules.update(saved)


def _methods() -> list[Any]:
    """The service's method descriptors (upb)."""
    module = importlib.import_module(f"{PACKAGE}.bookstore_pb2")
    return list(module.DESCRIPTOR.services_by_name["BookstoreService"].methods)


def make_grpcio_test_servicer() -> Any:
    """examples/bookstore_grpcio.py with injectable failures, recording its messages."""
    return _recording(_faulty(type(make_servicer(PACKAGE))))()


def _faulty(base: type) -> type:
    class FaultyBookstore(base):  # type: ignore[misc]
        async def GetShelf(self, request: Any, context: Any) -> Any:
            if request.shelf == "fail-details":
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    DETAILED_FAILURE,
                    trailing_metadata=(("grpc-status-details-bin", _details_bin()),),
                )
            if request.shelf.startswith("fail-"):
                code = int(request.shelf.removeprefix("fail-"))
                message = f"injected failure with code {code}"
                if code not in CODES:
                    raise RuntimeError(message)
                await context.abort(CODES[code], message)
            if request.shelf == "crash":
                raise RuntimeError(SECRET)
            if request.shelf == "void":
                return None  # not a Shelf: grpc.aio fails serializing it
            return await super().GetShelf(request, context)

        async def WatchShelf(self, request: Any, context: Any) -> AsyncIterator[Any]:
            failure = STREAM_FAILURES.get(request.name)
            if failure is None:
                async for event in super().WatchShelf(request, context):
                    yield event
                return
            events = importlib.import_module(f"{PACKAGE}.messages_pb2")
            yield events.ShelfEvent(shelf=request.name, book_removed=f"{request.name}/books/first")
            if not isinstance(failure, GRPCError):
                raise failure
            await context.abort(CODES[failure.status.value], failure.message)

    return FaultyBookstore


def _details_bin() -> bytes:
    """`FAILURE_DETAILS` in a serialized google.rpc.Status, as grpc-status-details-bin has it."""
    status = status_pb2.Status(code=3, message=DETAILED_FAILURE)
    for detail in FAILURE_DETAILS:
        status.details.add().Pack(detail)
    return status.SerializeToString()


def _recording(cls: type) -> type:
    """A subclass of `cls` whose handlers record what they get (`received`) and return (`sent`)."""

    def unary(name: str, method: Any) -> Callable[..., Any]:
        async def handler(self: Any, request: Any, context: Any) -> Any:
            self.record(self.received, name, method.input_type, request)
            response = await getattr(super(recording, self), method.name)(request, context)
            self.record(self.sent, name, method.output_type, response)
            return response

        return handler

    def server_streaming(name: str, method: Any) -> Callable[..., Any]:
        async def handler(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
            self.record(self.received, name, method.input_type, request)
            async for item in getattr(super(recording, self), method.name)(request, context):
                self.record(self.sent, name, method.output_type, item)
                yield item

        return handler

    def client_streaming(name: str, method: Any) -> Callable[..., Any]:
        async def handler(self: Any, requests: AsyncIterator[Any], context: Any) -> Any:
            async def tee() -> AsyncIterator[Any]:
                async for request in requests:
                    self.record(self.received, name, method.input_type, request)
                    yield request

            response = await getattr(super(recording, self), method.name)(tee(), context)
            self.record(self.sent, name, method.output_type, response)
            return response

        return handler

    def init(self: Any) -> None:
        cls.__init__(self)  # type: ignore[misc]
        self.received = []
        self.sent = []

    def record(self: Any, into: list[Received], name: str, kind: Any, message: Any) -> None:
        wire = message.SerializeToString() if message is not None else b""
        into.append(Received(name, kind.full_name, wire))

    wrappers = {
        (False, False): unary,
        (False, True): server_streaming,
        (True, False): client_streaming,
    }
    namespace: dict[str, Any] = {"__init__": init, "record": record}
    for method in _methods():
        wrap = wrappers.get((method.client_streaming, method.server_streaming))
        if wrap is not None:  # bidi SyncInventory has no HTTP binding
            namespace[method.name] = wrap(safe_snake_case(method.name), method)
    recording = type(f"Recording{cls.__name__}", (cls,), namespace)
    return recording


def _switchboard(board: Any) -> Any:
    """A servicer forwarding every call to `board.current` (grpcio binds handlers once)."""
    base = importlib.import_module(f"{PACKAGE}.bookstore_pb2_grpc").BookstoreServiceServicer

    def forward(method: Any) -> Callable[..., Any]:
        if method.server_streaming:

            async def stream(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
                async for item in getattr(board.current, method.name)(request, context):
                    yield item

            return stream

        async def unary(self: Any, request: Any, context: Any) -> Any:
            return await getattr(board.current, method.name)(request, context)

        return unary

    namespace = {
        m.name: forward(m) for m in _methods() if not m.client_streaming or not m.server_streaming
    }
    return type("Switchboard", (base,), namespace)()


class _Board:
    """The servicer the switchboard forwards to: a fresh one per `install()`."""

    def __init__(self) -> None:
        self.current = make_grpcio_test_servicer()

    def install(self) -> Any:
        self.current = make_grpcio_test_servicer()
        return self.current


@contextlib.contextmanager
def grpcio_backend(root: Path) -> Iterator[ProxyBackend]:
    """A grpc.aio server on a free loopback port, in a thread with its own event loop."""
    with grpcio_classes(root):
        board = _Board()
        add = importlib.import_module(f"{PACKAGE}.bookstore_pb2_grpc")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()

        async def start() -> tuple[grpc.aio.Server, int]:
            server = grpc.aio.server()
            add.add_BookstoreServiceServicer_to_server(_switchboard(board), server)
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            return server, port

        server, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        try:
            yield ProxyBackend("grpcio", f"127.0.0.1:{port}", board.install, INTERNAL)
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(None), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
