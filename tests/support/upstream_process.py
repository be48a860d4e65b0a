"""A real upstream gRPC server (and a real gateway) in their own processes, for the proxy tests.

`python -m tests.support.upstream_process serve --port P --root R --package gen.bookstore.v1
--events F` serves the example Bookstore (examples/bookstore.py) on 127.0.0.1:P with test
behaviours, chosen
by the request:
- `GET /v1/shelves/slow-<ms>`: GetShelf sleeps that long before answering.
- `GET /v1/shelves/details`: GetShelf fails INVALID_ARGUMENT with google.rpc details
  (`DETAILS`) and one detail of a type only this process knows (`UNKNOWN_TYPE`).
- `GET /v1/shelves/many:watch?maxEvents=N`: WatchShelf streams N events of `PAYLOAD` bytes each
  (0: until cancelled, one every 10 ms); `--payload` sets the title size (512 bytes).
- `GET /v1/shelves/details:watch`: WatchShelf sends one event, then fails with `DETAILS`.
- `POST /v1/books:import`: ImportBooks records `received <name>` as each book arrives.
Every handler appends lines to the events file: `start <method> <x-request-id>`, then
`done …` or `cancelled …` (the handler saw its call cancelled), and `sent <n> <id>` every
1,000 stream messages. `--tls-cert/--tls-key` serve TLS (ALPN h2), `--tls-client-ca`
mutual TLS.

`python -m tests.support.upstream_process gateway --port P --upstream HOST:PORT --root R --package
…` runs `Gateway(upstream=…)` under uvicorn on 127.0.0.1:P (`--deadline S`, 0 for none).

Both print `ready` once listening. `UpstreamProcess` and `GatewayProcess` start, stop, kill
and restart them from a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import importlib
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.rpc import error_details_pb2
from grpclib.const import Status
from grpclib.events import RecvRequest, listen
from grpclib.exceptions import GRPCError
from grpclib.server import Server

from examples.bookstore import make_service
from protoc_gen_restmon.runtime.grpclib_private import close_server
from tests.support.servers import free_port

REPO = Path(__file__).resolve().parents[2]
UNKNOWN_TYPE = "restmon.test.Secret"
DETAILS = [
    error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="shelf", description="no such shelf")
        ]
    ),
    error_details_pb2.ErrorInfo(reason="SHELF_MISSING", domain="bookstore.example", metadata={}),
]
TLS_OPTIONS = ("--tls-cert", "--tls-key", "--tls-client-ca")
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


# --- The server side (in the subprocess) ---


class EventLog:
    """Lines appended to the events file, read by the test as they come. Each write opens the
    file: handlers finishing during shutdown still get their line out."""

    def __init__(self, path: str) -> None:
        self.path = path

    def write(self, *words: object) -> None:
        with open(self.path, "a", encoding="utf-8") as events:
            events.write(" ".join(map(str, words)) + "\n")


def unknown_detail() -> Any:
    """A message of a type the gateway has never seen (built from a descriptor here)."""
    file = descriptor_pb2.FileDescriptorProto(
        name="restmon_test_secret.proto", package="restmon.test"
    )
    message = file.message_type.add(name="Secret")
    message.field.add(name="code", number=1, type=5, label=1)  # int32
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    secret = message_factory.GetMessageClass(pool.FindMessageTypeByName(UNKNOWN_TYPE))
    return secret(code=7)


def testing_service(pb: ModuleType, log: EventLog, payload: int) -> Any:
    base: type = type(make_service(pb))

    class TestingBookstore(base):  # type: ignore[misc]
        async def get_shelf(self, request: Any) -> Any:
            with recorded(log, "GetShelf"):
                if request.shelf.startswith("slow-"):
                    await asyncio.sleep(int(request.shelf.removeprefix("slow-")) / 1000)
                if request.shelf == "details":
                    details = [*DETAILS, unknown_detail()]
                    raise GRPCError(Status.INVALID_ARGUMENT, "bad shelf", details)
                return await super().get_shelf(request)

        async def watch_shelf(self, request: Any) -> AsyncIterator[Any]:
            with recorded(log, "WatchShelf"):
                if request.name == "shelves/many":
                    async for event in many_events(pb, request.max_events, log, payload):
                        yield event
                    return
                if request.name == "shelves/details":
                    yield pb.ShelfEvent(shelf=request.name)
                    raise GRPCError(Status.FAILED_PRECONDITION, "shelf gone", DETAILS)
                async for event in super().watch_shelf(request):
                    yield event

        async def import_books(self, requests: AsyncIterator[Any]) -> Any:
            async def each() -> AsyncIterator[Any]:
                async for book in requests:
                    log.write("received", book.name)
                    yield book

            with recorded(log, "ImportBooks"):
                return await super().import_books(each())

    return TestingBookstore()


async def many_events(
    pb: ModuleType, count: int, log: EventLog, payload: int
) -> AsyncIterator[Any]:
    title = "x" * payload
    sent = 0
    while count == 0 or sent < count:
        if count == 0:
            await asyncio.sleep(0.01)
        yield pb.ShelfEvent(shelf="shelves/many", book_added=pb.Book(name=f"b{sent}", title=title))
        sent += 1
        if sent % 1000 == 0:
            log.write("sent", sent, REQUEST_ID.get())


class recorded:
    """`start`, then `done` or `cancelled` of one handler call, with its request id."""

    def __init__(self, log: EventLog, method: str) -> None:
        self.log, self.method = log, method

    def __enter__(self) -> None:
        self.log.write("start", self.method, REQUEST_ID.get())

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        cancelled = kind is not None and issubclass(kind, asyncio.CancelledError)
        self.log.write("cancelled" if cancelled else "done", self.method, REQUEST_ID.get())


async def serve(args: argparse.Namespace) -> None:
    pb = load_package(args.root, args.package)
    server = Server([testing_service(pb, EventLog(args.events), args.payload)])

    async def on_request(event: RecvRequest) -> None:
        # Runs in the handler's task: the handler reads the id from its context.
        REQUEST_ID.set(str(event.metadata.get("x-request-id", "-")))

    listen(server, RecvRequest, on_request)
    await server.start("127.0.0.1", args.port, ssl=server_tls(args), reuse_address=True)
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await close_server(server)  # stops listening, cancels running handlers


def server_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    context.set_alpn_protocols(["h2"])
    if args.tls_client_ca:  # mutual TLS: clients must show a certificate this CA signed
        context.load_verify_locations(args.tls_client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def gateway(args: argparse.Namespace) -> None:
    import uvicorn

    from protoc_gen_restmon.runtime.gateway.app import Gateway, GatewayOptions, UpstreamOptions

    options = GatewayOptions(upstream=UpstreamOptions(deadline=args.deadline or None))
    app = Gateway(
        upstream=args.upstream, packages=[load_package(args.root, args.package)], options=options
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await task


def load_package(root: str, name: str) -> ModuleType:
    sys.path.insert(0, root)
    return importlib.import_module(name)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.upstream_process")
    parser.add_argument("role", choices=["serve", "gateway"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--package", required=True)
    parser.add_argument("--events", default=os.devnull)
    parser.add_argument("--upstream", default="")
    parser.add_argument("--payload", type=int, default=512)
    parser.add_argument("--deadline", type=float, default=30.0, help="0: none")
    parser.add_argument("--tls-cert", default="")
    parser.add_argument("--tls-key", default="")
    parser.add_argument("--tls-client-ca", default="")
    args = parser.parse_args()
    asyncio.run(serve(args) if args.role == "serve" else gateway(args))


# --- The test side ---


def package_root(pb: ModuleType) -> str:
    """The sys.path entry a generated package was imported from."""
    return str(Path(pb.__file__ or "").parents[pb.__name__.count(".") + 1])


P = TypeVar("P", bound="Process")


class Process:
    """One `python -m tests.support.upstream_process …` child; `start` returns once it is ready."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.popen: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> None:
        command = [sys.executable, "-m", "tests.support.upstream_process", *self.args]
        self.popen = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline()  # "ready", or "" if it died
        if line.strip() != "ready":
            self.stop()
            raise AssertionError(f"{self.args[0]} did not start (exit {self.popen.returncode})")

    def __enter__(self: P) -> P:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def kill(self) -> None:
        """SIGKILL: no goodbye, the kernel closes its sockets."""
        assert self.popen is not None
        self.popen.kill()
        self.popen.wait(10)

    def stop(self) -> None:
        """SIGTERM (a graceful stop), then SIGKILL if it lingers."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def rss_kib(self) -> int:
        """The process's resident set size (VmRSS), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


class UpstreamProcess(Process):
    def __init__(
        self,
        pb: ModuleType,
        events: Path,
        *,
        port: int = 0,
        tls: tuple[Path, ...] = (),
        payload: int = 512,
    ) -> None:
        self.port = port or free_port()
        self.events = events
        args = ["serve", "--port", str(self.port), "--root", package_root(pb)]
        args += ["--package", pb.__name__, "--events", str(events), "--payload", str(payload)]
        # tls: (cert, key) or (cert, key, client CA)
        for option, path in zip(TLS_OPTIONS, tls, strict=False):
            args += [option, str(path)]
        super().__init__(*args)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def lines(self) -> list[str]:
        return self.events.read_text().splitlines() if self.events.exists() else []

    def wait_for(self, line: str, timeout: float = 5.0) -> float:
        """Wait until the events file holds `line`; the time it took, in seconds."""
        began = time.monotonic()
        while line not in self.lines():
            if time.monotonic() - began > timeout:
                raise AssertionError(f"no {line!r} in {self.lines()[-5:]}")
            time.sleep(0.01)
        return time.monotonic() - began


class GatewayProcess(Process):
    def __init__(self, pb: ModuleType, upstream: str, *, deadline: float = 30.0) -> None:
        self.port = free_port()
        args = ["gateway", "--port", str(self.port), "--root", package_root(pb)]
        args += ["--package", pb.__name__, "--upstream", upstream, "--deadline", str(deadline)]
        super().__init__(*args)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


if __name__ == "__main__":
    main()
