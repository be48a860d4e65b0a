"""`make demo`'s server: the example bookstore answering over real gRPC and real HTTP at once."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.protoc_tools import EXAMPLE_FILES, PROTOS, REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"demo server did not listen on {port}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int, int]]:
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
        wait_for(http_port, process)
        wait_for(grpc_port, process)
        yield root, grpc_port, http_port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_rest_answers_and_shares_state_with_grpc(demo: tuple[Path, int, int]) -> None:
    root, grpc_port, http_port = demo
    base = f"http://127.0.0.1:{http_port}"
    created = httpx.post(f"{base}/v1/shelves/fiction/books", json={"title": "Solaris"})
    assert created.status_code == 200
    name = created.json()["name"]
    assert name.startswith("shelves/fiction/books/")

    # Import this root's `gen` alone: other tests' `gen` modules are set aside, then restored.
    saved = {m: sys.modules.pop(m) for m in list(sys.modules) if m == "gen" or m.startswith("gen.")}
    sys.path.insert(0, str(root))
    try:
        import gen.bookstore.v1 as pb  # type: ignore[import-not-found]
        from grpclib.client import Channel

        async def fetch() -> object:
            channel = Channel("127.0.0.1", grpc_port)
            try:
                stub = pb.BookstoreServiceStub(channel)
                return await stub.get_book(pb.GetBookRequest(name=name))
            finally:
                channel.close()

        book = asyncio.run(fetch())
    finally:
        sys.path.remove(str(root))
        for module in [m for m in sys.modules if m == "gen" or m.startswith("gen.")]:
            del sys.modules[module]
        sys.modules.update(saved)
    assert book.title == "Solaris"  # type: ignore[attr-defined]


def test_the_readme_curl_lines_work(demo: tuple[Path, int, int]) -> None:
    _, _, http_port = demo
    base = f"http://127.0.0.1:{http_port}"
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
