"""`make demo`'s server: the example bookstore answering over real gRPC and real HTTP at once."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.protoc_tools import EXAMPLE_FILES, PROTOS, REPO
from tests.support.servers import free_port


def wait_for(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"demo server did not listen on {port}")


@dataclass(frozen=True)
class Demo:
    root: Path
    grpc_port: int
    http_port: int
    token: str  # the admin token the server printed at startup


def read_token(process: subprocess.Popen[str]) -> str:
    """The admin token from the server's startup text (`export RESTMON_TOKEN=…`)."""
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip().startswith("export RESTMON_TOKEN="):
            return line.strip().split("=", 1)[1]
    raise AssertionError("the demo server printed no admin token")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("demo")
    restmon = Path(sys.executable).with_name("restmon")
    files = [str(PROTOS / name) for name in EXAMPLE_FILES]
    subprocess.run(
        [str(restmon), "generate", "-I", str(PROTOS), "-o", str(root / "gen"), *files],
        check=True,
        capture_output=True,
    )
    grpc_port, http_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "examples.serve",
            str(root),
            "--grpc-port",
            str(grpc_port),
            "--http-port",
            str(http_port),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        token = read_token(process)
        wait_for(http_port, process)
        wait_for(grpc_port, process)
        yield Demo(root, grpc_port, http_port, token)
    finally:
        process.terminate()
        process.wait(timeout=10)


def grpc_get_book(demo: Demo, name: str) -> Any:
    """GetBook over gRPC, with the demo's own generated `gen` package."""
    # Import this root's `gen` alone: other tests' `gen` modules are set aside, then restored.
    saved = {m: sys.modules.pop(m) for m in list(sys.modules) if m == "gen" or m.startswith("gen.")}
    sys.path.insert(0, str(demo.root))
    try:
        import gen.bookstore.v1 as pb  # type: ignore[import-not-found]
        from grpclib.client import Channel

        async def fetch() -> object:
            channel = Channel("127.0.0.1", demo.grpc_port)
            try:
                stub = pb.BookstoreServiceStub(channel)
                return await stub.get_book(pb.GetBookRequest(name=name))
            finally:
                channel.close()

        return asyncio.run(fetch())
    finally:
        sys.path.remove(str(demo.root))
        for module in [m for m in sys.modules if m == "gen" or m.startswith("gen.")]:
            del sys.modules[module]
        sys.modules.update(saved)


def test_rest_answers_and_shares_state_with_grpc(demo: Demo) -> None:
    base = f"http://127.0.0.1:{demo.http_port}"
    created = httpx.post(f"{base}/v1/shelves/fiction/books", json={"title": "Solaris"})
    assert created.status_code == 200
    name = created.json()["name"]
    assert name.startswith("shelves/fiction/books/")
    assert grpc_get_book(demo, name).title == "Solaris"


def test_the_readme_curl_lines_work(demo: Demo) -> None:
    base = f"http://127.0.0.1:{demo.http_port}"
    assert httpx.get(f"{base}/v1/shelves").json()["shelves"][0]["name"] == "shelves/fiction"
    assert httpx.get(f"{base}/v1/shelves/fiction/books/dune").json()["isbn"] == "9780441013593"
    patched = httpx.patch(f"{base}/v1/shelves/fiction/books/dune", json={"title": "Dune (1965)"})
    assert patched.json()["title"] == "Dune (1965)"
    stream = httpx.get(f"{base}/v1/shelves/fiction:watch").text.splitlines()
    assert stream and all(line.startswith('{"result":') for line in stream)
    assert httpx.get(f"{base}/v1/genres").json() == ["GENRE_SCIENCE_FICTION"]
    missing = httpx.get(f"{base}/v1/shelves/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {"code": 5, "message": "shelves/nowhere not found", "details": []}


def test_the_admin_api_shows_the_calls_made(demo: Demo) -> None:
    """A failing REST call and a gRPC call, then the admin API on the same port: the monitor
    recorded both in <root>/restmon.db."""
    base = f"http://127.0.0.1:{demo.http_port}"
    dune = "shelves/fiction/books/dune"
    assert httpx.get(f"{base}/v1/shelves/nowhere").status_code == 404
    assert grpc_get_book(demo, dune).name == dune
    assert httpx.get(f"{base}/api/grpc/monitor/requests/").status_code == 401
    headers = {"Authorization": f"Bearer {demo.token}"}

    def recorded() -> dict[str, dict[str, Any]]:
        answer = httpx.get(f"{base}/api/grpc/monitor/requests/", headers=headers).json()
        return {
            f"{r['transport']} {r['method_name']} {r['grpc_status_code']}": r
            for r in answer["results"]
        }

    wanted = {"http GetShelf NOT_FOUND", "grpc GetBook OK"}
    deadline = time.monotonic() + 10
    while not wanted <= set(records := recorded()) and time.monotonic() < deadline:
        time.sleep(0.1)  # the monitor writes in the background
    assert wanted <= set(records)
    assert records["http GetShelf NOT_FOUND"]["http_path"] == "/v1/shelves/nowhere"
    assert (demo.root / "restmon.db").is_file()
    listing = httpx.get(f"{base}/cfg/grpc/proto-files/", headers=headers).json()
    assert "bookstore/v1/bookstore.proto" in [f["filename"] for f in listing["files"]]
