"""Fixtures for the gateway tests: the example service generated for real, and a raw ASGI driver.

- `bookstore_pb`: `restmon generate` run once per session on `protos/`, imported as
  `restmon_gateway_gen.bookstore.v1` (not `gen`: tests/protoc_tools.imported_output owns that);
  `configured_pb`: the same with `SERVICE_CONFIG` as the plugin's http_config.
- `serve(pb, backend=..., ...)` -> `Served`: a `Gateway` over `make_test_service(pb)`, the
  example Bookstore of examples/bookstore.py with a few failures a request can ask for, recording
  every message its handlers get and return. `example` / `configured`: `serve` with the default
  options on the test's `backend`.
- `backend` (module-scoped, parametrized): where the gateway sends its calls. `in-process`
  (`Gateway(services=…)`), `grpclib` (proxy mode in front of a grpclib server hosting the same
  recording service, tests/support/proxy_fixtures.py) or `grpcio` (proxy mode in front of a grpc.aio
  server hosting examples/bookstore_grpcio.py with the same failures and recording,
  tests/support/grpcio_fixtures.py): every conformance test runs on all three.
- `call(app, method, target, ...)`: one request through the ASGI interface, with the raw path
  exactly as given (no client-side normalisation) and every `send()` message kept and checked.

Fixtures are defined as `fixture_<name>` (pytest name `<name>`). The two session fixtures are
imported by tests/conftest.py (one generation per session); import the others a module uses,
the fixtures (registered by tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple, Protocol
from urllib.parse import unquote

import pytest
from betterproto.casing import safe_snake_case
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpclib import GRPCError
from grpclib.const import Status

from examples.bookstore import make_service
from protoc_gen_restmon.runtime.gateway.app import Gateway, GatewayOptions
from protoc_gen_restmon.runtime.jsoncodec.options import JsonOptions
from protoc_gen_restmon.runtime.specs import Cardinality, MethodSpec
from protoc_gen_restmon.runtime.status import RpcError
from protoc_gen_restmon.runtime.transcode.request import TranscodeOptions
from tests.support.protoc_tools import EXAMPLE_FILES, PROTOS, REPO

GENERATED = "restmon_gateway_gen"
CONFIGURED = "restmon_gateway_configured_gen"
# A request id the runtime made (observe.new_request_id): a UUID version 7, RFC 9562's variant.
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

# What a failing handler knows and a client must never see (FaultyBookstore, "crash").
SECRET = "password=hunter2 in /srv/bookstore/db.py"

# GetShelf("fail-details") fails INVALID_ARGUMENT with this message and these google.rpc details
# (in process as GRPCError details, upstream as grpc-status-details-bin).
DETAILED_FAILURE = "shelf id fail-details is not allowed"
FAILURE_DETAILS = (
    error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="shelf", description="reserved id")
        ]
    ),
    error_details_pb2.ErrorInfo(reason="SHELF_ID_RESERVED", domain="bookstore.example"),
)


# --- The generated example package ---


# GetStoreStats has no google.api.http annotation: a service config binds it, with
# `fully_decode_reserved_expansion` (which only a service config can set) and with templates
# that compete with the annotated ones of the example (`stats` is a literal where GetBook has `*`).
SERVICE_CONFIG = """\
http:
  fully_decode_reserved_expansion: true
  rules:
    - selector: bookstore.v1.BookstoreService.GetStoreStats
      get: /v1/stats/{shelf=**}
      additional_bindings:
        - get: /v1/stats/{shelf=**}/summary
        - get: /v1/{shelf=shelves/*}/books/stats/summary
"""


@pytest.fixture(scope="session", name="bookstore_pb")
def fixture_bookstore_pb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """`restmon generate -I protos -o <root>/restmon_gateway_gen <every example proto>`."""
    with _generated(tmp_path_factory.mktemp("gateway"), GENERATED) as package:
        yield package


@pytest.fixture(scope="session", name="configured_pb")
def fixture_configured_pb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The example protos generated with `SERVICE_CONFIG` as the plugin's http_config."""
    root = tmp_path_factory.mktemp("gateway_configured")
    config = root / "service.yaml"
    config.write_text(SERVICE_CONFIG)
    with _generated(root, CONFIGURED, f"http_config={config}") as package:
        yield package


@contextlib.contextmanager
def _generated(root: Path, name: str, *options: str) -> Iterator[ModuleType]:
    """Generate the example protos into root/name and import `name.bookstore.v1`."""
    restmon = Path(sys.executable).with_name("restmon")
    command = [str(restmon) if restmon.exists() else shutil.which("restmon") or "restmon"]
    files = [str(PROTOS / file) for file in EXAMPLE_FILES]
    result = subprocess.run(
        [
            *command,
            "generate",
            "-I",
            str(PROTOS),
            "-o",
            str(root / name),
            *(f"--opt={option}" for option in options),
            *files,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise AssertionError(f"restmon generate failed: {result.stderr}")
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield importlib.import_module(f"{name}.bookstore.v1")
    finally:
        sys.path.remove(str(root))
        for module in [m for m in sys.modules if m.split(".")[0] == name]:
            del sys.modules[module]


# --- The service under test ---


class Received(NamedTuple):
    """One message a handler got or returned, as it was at that moment."""

    handler: str  # the Python name of the handler, "get_shelf"
    proto_name: str  # "bookstore.v1.GetShelfRequest"
    wire: bytes  # the betterproto message's wire bytes (handlers change their requests)

    @classmethod
    def of(cls, handler: str, proto_name: str, message: Any) -> Received:
        return cls(handler, proto_name, bytes(message))


def make_test_service(pb: ModuleType) -> Any:
    """The example Bookstore with injectable failures, recording every request it receives.

    Failures, chosen by the request:
    - `GET /v1/shelves/fail-<code>`: GetShelf fails with that gRPC code (a grpclib GRPCError);
      a code outside google.rpc.Code (`fail-99`) is raised as the runtime's own RpcError.
    - `GET /v1/shelves/fail-details`: GetShelf fails INVALID_ARGUMENT with `DETAILED_FAILURE`
      and `FAILURE_DETAILS`.
    - `GET /v1/shelves/crash`: GetShelf raises a plain exception whose text holds `SECRET`.
    - `GET /v1/shelves/void`: GetShelf returns None instead of a Shelf.
    - `GET /v1/shelves/<id>:watch` for an id in `STREAM_FAILURES`: WatchShelf sends one event,
      then fails.
    """
    [spec] = importlib.import_module(f"{pb.__name__}._restmon_monitor").SERVICES
    return _recording(_faulty(pb), spec.methods)()


def _faulty(pb: ModuleType) -> type:
    base: type = type(make_service(pb))

    class FaultyBookstore(base):  # type: ignore[misc,valid-type]
        async def get_shelf(self, request: Any) -> Any:
            if request.shelf == "fail-details":
                status, details = Status.INVALID_ARGUMENT, list(FAILURE_DETAILS)
                raise GRPCError(status, DETAILED_FAILURE, details=details)
            if request.shelf.startswith("fail-"):
                code = int(request.shelf.removeprefix("fail-"))
                message = f"injected failure with code {code}"
                if code in Status._value2member_map_:
                    raise GRPCError(Status(code), message)
                raise RpcError(code, message)  # type: ignore[arg-type]
            if request.shelf == "crash":
                raise RuntimeError(SECRET)
            if request.shelf == "void":
                return None  # not a Shelf: the gateway fails writing it
            return await super().get_shelf(request)

        async def watch_shelf(self, request: Any) -> AsyncIterator[Any]:
            failure = STREAM_FAILURES.get(request.name)
            if failure is None:
                async for event in super().watch_shelf(request):
                    yield event
                return
            yield pb.ShelfEvent(shelf=request.name, book_removed=f"{request.name}/books/first")
            raise failure

    return FaultyBookstore


STREAM_FAILURES: dict[str, Exception] = {
    "shelves/flaky": GRPCError(Status.UNAVAILABLE, "the shelf sensor went offline"),
    "shelves/crashy": RuntimeError(SECRET),
}


def _recording(cls: type, methods: Sequence[MethodSpec]) -> type:
    """A subclass of `cls` whose handlers record what they get (`received`) and return (`sent`)."""

    def unary(name: str, method: MethodSpec) -> Any:
        async def handler(self: Any, request: Any) -> Any:
            self.received.append(Received.of(name, method.request.proto_name, request))
            response = await getattr(super(recording, self), name)(request)
            self.sent.append(Received.of(name, method.response.proto_name, response))
            return response

        return handler

    def server_streaming(name: str, method: MethodSpec) -> Any:
        async def handler(self: Any, request: Any) -> AsyncIterator[Any]:
            self.received.append(Received.of(name, method.request.proto_name, request))
            async for item in getattr(super(recording, self), name)(request):
                self.sent.append(Received.of(name, method.response.proto_name, item))
                yield item

        return handler

    def client_streaming(name: str, method: MethodSpec) -> Any:
        async def handler(self: Any, requests: AsyncIterator[Any]) -> Any:
            async def tee() -> AsyncIterator[Any]:
                async for request in requests:
                    self.received.append(Received.of(name, method.request.proto_name, request))
                    yield request

            response = await getattr(super(recording, self), name)(tee())
            self.sent.append(Received.of(name, method.response.proto_name, response))
            return response

        return handler

    def init(self: Any) -> None:
        cls.__init__(self)
        self.received = []
        self.sent = []

    wrappers = {
        Cardinality.UNARY_UNARY: unary,
        Cardinality.UNARY_STREAM: server_streaming,
        Cardinality.STREAM_UNARY: client_streaming,
    }
    namespace: dict[str, Any] = {"__init__": init}
    for method in methods:
        if method.cardinality in wrappers:  # bidi SyncInventory has no HTTP binding
            name = safe_snake_case(method.name)
            namespace[name] = wrappers[method.cardinality](name, method)
    recording = type(f"Recording{cls.__name__}", (cls,), namespace)
    return recording


@dataclass(frozen=True)
class Served:
    """A gateway over a recording test service (`make_test_service`)."""

    gateway: Gateway
    service: Any

    def requests(self) -> list[tuple[str, dict[str, Any]]]:
        """Every request the handlers got: (handler name, the message as a dict).

        The dict is `json_format.MessageToDict` (proto field names, set fields only) of the
        message decoded by upb from betterproto's wire bytes: an oracle independent of the
        gateway's own betterproto crossing.
        """
        return [
            (r.handler, self.as_dict(r, preserving_proto_field_name=True))
            for r in self.service.received
        ]

    def messages(self) -> list[tuple[str, Message]]:
        """Every request the handlers got, as upb messages (see `requests`)."""
        return [(r.handler, self.as_message(r)) for r in self.service.received]

    def as_message(self, record: Received) -> Message:
        return self.gateway.registry.message_class(record.proto_name).FromString(record.wire)

    def as_dict(self, record: Received, **options: Any) -> dict[str, Any]:
        return json_format.MessageToDict(self.as_message(record), **options)


class Backend(Protocol):
    """Where a conformance test's gateway sends its calls (see `fixture_backend`)."""

    @property
    def name(self) -> str: ...

    @property
    def internal(self) -> tuple[int, str]:
        """What a REST client gets when a handler fails unexpectedly (raises, returns no
        message): the code, and a regular expression its message matches."""
        ...

    def serve(self, pb: ModuleType, options: GatewayOptions) -> Served: ...


@dataclass(frozen=True)
class InProcess:
    """`Gateway(services=[make_test_service(pb)])`."""

    name: str = "in-process"
    internal: tuple[int, str] = (13, "internal error")  # and the gateway logs the exception

    def serve(self, pb: ModuleType, options: GatewayOptions) -> Served:
        service = make_test_service(pb)
        return Served(Gateway(services=[service], options=options), service)


IN_PROCESS = InProcess()
BACKENDS = ("in-process", "grpclib", "grpcio")


def serve(
    pb: ModuleType,
    *,
    backend: Backend = IN_PROCESS,
    json_options: JsonOptions | None = None,
    transcode: TranscodeOptions | None = None,
) -> Served:
    """A gateway over a fresh `make_test_service(pb)` (or its twin upstream), with the options."""
    options = GatewayOptions(
        json=json_options or JsonOptions(), transcode=transcode or TranscodeOptions()
    )
    return backend.serve(pb, options)


@pytest.fixture(name="backend", scope="module", params=BACKENDS)
def fixture_backend(
    request: pytest.FixtureRequest,
    bookstore_pb: ModuleType,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Backend]:
    """Each conformance test runs three times: in process, and through a proxy Gateway in front
    of a real grpclib server and of a real grpcio (grpc.aio) server, on loopback. The servers
    live for a test module (each module imports this fixture: a session one would be one per
    module anyway); every `serve` installs a fresh service in them."""
    # Imported here: both modules build on this one.
    from tests.support.grpcio_fixtures import grpcio_backend
    from tests.support.proxy_fixtures import grpclib_backend

    if request.param == "grpclib":
        with grpclib_backend(bookstore_pb) as proxied:
            yield proxied
    elif request.param == "grpcio":
        with grpcio_backend(tmp_path_factory.mktemp("grpcio")) as proxied:
            yield proxied
    else:
        yield IN_PROCESS


def in_process_only(backend: Backend, reason: str) -> None:
    """Skip the running test on the proxy backends; `reason` says why it cannot run there."""
    if backend.name != IN_PROCESS.name:
        pytest.skip(f"in-process only: {reason}")


def assert_internal(backend: Backend, status: dict[str, Any]) -> None:
    """`status` (a google.rpc.Status as JSON) is what `backend` answers for a failed handler."""
    code, message = backend.internal
    assert status["code"] == code, status
    assert re.fullmatch(message, status["message"]), status


JSON = [("content-type", "application/json")]
DUNE = "shelves/fiction/books/dune"  # the book examples/bookstore.py seeds


@pytest.fixture(name="example")
def fixture_example(bookstore_pb: ModuleType, backend: Backend) -> Served:
    """A gateway over a fresh example service, default options."""
    return serve(bookstore_pb, backend=backend)


@pytest.fixture(name="configured")
def fixture_configured(configured_pb: ModuleType, backend: Backend) -> Served:
    """The example plus GetStoreStats bound by `SERVICE_CONFIG`: `/v1/stats/{shelf=**}`,
    `/v1/stats/{shelf=**}/summary` (fully decoded reserved expansion) and
    `/v1/{shelf=shelves/*}/books/stats/summary` (a literal where GetBook has `*`)."""
    return serve(configured_pb, backend=backend)


# --- A raw ASGI driver ---


@dataclass(frozen=True)
class Reply:
    """What the app sent: status, headers (names lower-cased), the joined body, every message."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    messages: tuple[dict[str, Any], ...]

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name.lower()]
        if len(values) > 1:
            raise AssertionError(f"header {name} sent {len(values)} times: {values}")
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)

    def lines(self) -> list[Any]:
        """NDJSON: one JSON document per line, each line ending in a newline."""
        text = self.body.decode()
        if not text.endswith("\n"):
            raise AssertionError(f"NDJSON body does not end with a newline: {text!r}")
        return [json.loads(line) for line in text[:-1].split("\n")]

    def events(self) -> list[Any]:
        """Server-Sent Events: the JSON `data:` of each event."""
        text = self.body.decode()
        if not text.endswith("\n\n"):
            raise AssertionError(f"event stream does not end with a blank line: {text!r}")
        events = []
        for block in text[:-2].split("\n\n"):
            [line] = block.split("\n")
            events.append(json.loads(line.removeprefix("data: ")))
        return events


def split_target(target: str) -> tuple[bytes, bytes]:
    """`/a/b?x=1` -> (b"/a/b", b"x=1"), the bytes exactly as written."""
    raw_path, _, query = target.encode("utf-8", "surrogateescape").partition(b"?")
    return raw_path, query


async def asgi_call(
    app: Any,
    method: str,
    target: str,
    *,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | Sequence[bytes] = b"",
    root_path: str = "",
) -> Reply:
    """Send one HTTP request to `app` as a server would (uvicorn's scope), and check the reply.

    `body` is one chunk or a list of chunks (sent with `more_body`). `path` is `raw_path`
    percent-decoded, as uvicorn does; `root_path` is prepended to both, as uvicorn does.
    """
    raw_path, query = split_target(target)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": root_path + unquote(raw_path.decode("latin-1"), errors="replace"),
        "raw_path": root_path.encode() + raw_path,
        "root_path": root_path,
        "query_string": query,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    chunks = [body] if isinstance(body, bytes) else list(body)
    done = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if done.is_set():
            raise AssertionError(f"message sent after the response ended: {message}")
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    return _reply(sent)


def _reply(sent: list[dict[str, Any]]) -> Reply:
    if not sent or sent[0]["type"] != "http.response.start":
        raise AssertionError(f"the response does not begin with http.response.start: {sent}")
    start, *rest = sent
    if not rest or any(m["type"] != "http.response.body" for m in rest):
        raise AssertionError(f"expected body messages after the start: {rest}")
    if rest[-1].get("more_body", False):
        raise AssertionError("the response never ended (the last body message has more_body)")
    headers = []
    for name, value in start["headers"]:
        if not isinstance(name, bytes) or not isinstance(value, bytes) or name != name.lower():
            raise AssertionError(f"bad header: {(name, value)!r}")
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    body = b"".join(m.get("body", b"") for m in rest)
    reply = Reply(start["status"], tuple(headers), body, tuple(sent))
    length = reply.header("content-length")
    if length is not None and int(length) != len(body):
        raise AssertionError(f"content-length {length} but {len(body)} body bytes")
    return reply


def call(app: Any, method: str, target: str, **kwargs: Any) -> Reply:
    """`asgi_call` on a fresh event loop, then the app shut down (a proxy closes its channel)."""

    async def run() -> Reply:
        try:
            return await asgi_call(app, method, target, **kwargs)
        finally:
            await asgi_shutdown(app)

    return asyncio.run(run())


async def asgi_shutdown(app: Any) -> None:
    """The ASGI lifespan protocol, as a server runs it: startup, then shutdown at once."""
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        if not message["type"].endswith(".complete"):
            raise AssertionError(f"lifespan failed: {message}")

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.4"}, "state": {}}
    await app(scope, receive, send)


# --- Assertions shared by the gateway tests ---


def assert_status_body(reply: Reply, http_status: int, code: int, *fragments: str) -> None:
    """A google.rpc.Status JSON error: the HTTP status, the code, and the message fragments."""
    assert reply.status == http_status, reply.body
    assert reply.header("content-type") == "application/json"
    body = reply.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str)
    assert body["details"] == []
    for fragment in fragments:
        assert fragment in body["message"], body["message"]


def assert_answered(reply: Reply, status: int) -> None:
    """The status, and a body of the kind it calls for: JSON, NDJSON or a Status."""
    assert reply.status == status, reply.body
    if status == 200:
        assert reply.header("content-type") in ("application/json", "application/x-ndjson")
    else:
        assert_status_body(reply, status, {404: 5, 400: 3}[status])


def assert_status_shape(body: Any) -> None:
    """`{"code": int, "message": str, "details": list}`, nothing else."""
    assert isinstance(body, dict), body
    assert set(body) == {"code", "message", "details"}, body
    assert isinstance(body["code"], int) and not isinstance(body["code"], bool), body
    assert isinstance(body["message"], str), body
    assert isinstance(body["details"], list), body
