"""One worker of `restmon serve --workers N` (started by it, not by hand).

`python -m protoc_gen_restmon.serve_worker --listen-fd FD --index I restmon-arguments…`: the
parent's own command line, parsed again here, so the worker serves exactly what was asked
(its own gateway, upstream channel and monitor: nothing crosses from the parent), on the
listening socket the parent bound and passed as descriptor FD. The worker stops as a single
`restmon serve` does (`runtime/serving.py`), on the signal its parent forwards, or by itself
when its parent is gone.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence

PARENT_POLL = 1.0  # seconds between two looks at whether the parent still runs


def watch_parent() -> None:
    """SIGTERM this worker once its parent has exited (killed with SIGKILL, say): a worker
    must not serve on, orphaned, where nobody stops it."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="restmon-parent-watch", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    from protoc_gen_restmon.cli import parser as restmon_parser
    from protoc_gen_restmon.serve_cli import serve_here

    own = argparse.ArgumentParser(prog="python -m protoc_gen_restmon.serve_worker")
    own.add_argument("--listen-fd", type=int, required=True)
    own.add_argument("--index", type=int, default=0)
    own.add_argument("restmon", nargs=argparse.REMAINDER, help="the parent's arguments")
    ours = own.parse_args(argv)
    args = restmon_parser().parse_args(ours.restmon)
    listening = socket.socket(fileno=ours.listen_fd)
    watch_parent()
    return serve_here(args, sockets=[listening])


if __name__ == "__main__":
    sys.exit(main())
