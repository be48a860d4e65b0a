"""Servers the tests start: loopback ports, and uvicorn serving an ASGI app in a background
thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from protoc_gen_restmon.runtime.connections import ConnectionLimits, bound_uvicorn


def free_port() -> int:
    """A loopback port nothing listens on (bound once by the OS, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


WAIT = 10.0  # seconds to start and to stop


@contextlib.contextmanager
def uvicorn_server(
    app: Any, limits: ConnectionLimits | None = None, **options: Any
) -> Iterator[str]:
    """Serve `app` until the block ends; yield its base URL (`http://127.0.0.1:PORT`).

    `options` are uvicorn.Config's; only the log is quieter than uvicorn's defaults. With
    `limits`, through restmon's bounded protocols (`bound_uvicorn`, as `restmon serve`). The
    socket is bound before uvicorn starts, so the port cannot be taken by someone else
    meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, **{"log_level": "warning", "access_log": False, **options})
    if limits is not None:
        bound_uvicorn(config, limits)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + WAIT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start listening on port {port}")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT)
        sock.close()
    if thread.is_alive():
        raise RuntimeError("uvicorn did not shut down")


def content_length(head: bytes) -> int:
    """The Content-Length of a raw HTTP/1.1 response head (for the raw-socket clients: httpx
    makes reference cycles of its own and spends more CPU than the server under test)."""
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise AssertionError(f"no content-length: {head!r}")
