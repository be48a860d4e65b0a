"""Worker processes serving one listening socket: started, restarted when they die, stopped.

`restmon serve --workers N` binds its port once and runs N fresh interpreters
(`python -m protoc_gen_restmon.serve_worker`) that inherit the socket; the kernel hands each
new connection to one of the processes waiting in accept. Fresh interpreters, not `os.fork`:
a grpc.aio channel, the monitor's writer thread and database connections must not be copied
into a child.

`Supervisor.run` (the parent's whole life after the bind):

- a worker that exits while the server is not stopping is started again, after
  `Policy.backoff` seconds doubled for each exit in a row that came within `Policy.quick`
  seconds of its start; after `Policy.give_up_after` such quick exits in a row the supervisor
  gives up (the others are stopped, the status is 1, the message says why), rather than
  restarting a worker that cannot start for ever;
- SIGTERM and SIGINT are forwarded to every worker (each then stops as
  `runtime.serving` says: calls in flight get their grace, the monitor writes every record);
  a second one is forwarded too (the workers then cancel their calls at once). Workers run in
  a session of their own, so that Ctrl+C on a terminal reaches them once, through here;
- `run` returns when every worker has exited: 0, or 1 if a worker failed (a non-zero status
  while stopping, or the supervisor gave up).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

logger = logging.getLogger(__name__)

POLL = 0.05  # seconds between two looks at the workers
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True)
class Policy:
    quick: float = 5.0  # an exit this soon after the start counts as dying at once
    give_up_after: int = 5  # quick exits in a row of one worker before the supervisor gives up
    backoff: float = 0.25  # seconds before a restart, doubled per quick exit in a row
    max_backoff: float = 10.0

    def delay(self, quick_exits: int) -> float:
        return min(self.max_backoff, self.backoff * 2.0 ** max(0, quick_exits - 1))


@dataclass
class Worker:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_exits: int = 0  # in a row
    restart_at: float = 0.0


@dataclass
class Supervisor:
    """`command(index)` starts worker `index` (0 to count - 1) with `env`, `pass_fds` inherited.

    `on_exit(pid)` is called once for each worker process that has exited (the parent's
    bookkeeping: prometheus_client's `mark_process_dead`); `on_stop()` once, at the first stop
    signal (the parent closes its copy of the listening socket: with every worker's closed,
    new connections are refused instead of waiting in a backlog nobody reads)."""

    command: Callable[[int], Sequence[str]]
    count: int
    env: Mapping[str, str] | None = None
    pass_fds: Sequence[int] = ()
    policy: Policy = field(default_factory=Policy)
    on_exit: Callable[[int], None] = lambda pid: None
    on_stop: Callable[[], None] = lambda: None
    workers: list[Worker] = field(init=False)
    stopping: bool = field(init=False, default=False)
    failed: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"workers: {self.count}, expected at least 1")
        self.workers = [Worker(index) for index in range(self.count)]

    def run(self) -> int:
        previous = {signum: signal.signal(signum, self._signalled) for signum in STOP_SIGNALS}
        try:
            for worker in self.workers:
                self._start(worker)
            while not self._over():
                self._look()
                time.sleep(POLL)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._kill_all()  # only if run itself failed: a worker must not outlive it
        return 1 if self.failed else 0

    def _over(self) -> bool:
        """Stopping and every worker gone (until then a dead worker is waiting for its restart)."""
        return self.stopping and all(worker.process is None for worker in self.workers)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w.process is not None]

    def _start(self, worker: Worker) -> None:
        worker.process = subprocess.Popen(
            list(self.command(worker.index)),
            env=None if self.env is None else dict(self.env),
            pass_fds=tuple(self.pass_fds),
            start_new_session=True,  # signals reach it through the supervisor only
        )
        worker.started_at = time.monotonic()
        logger.info("worker %d started (pid %d)", worker.index, worker.process.pid)
        if self.stopping:  # the signal came while it was being started: it missed it
            worker.process.send_signal(signal.SIGTERM)

    def _look(self) -> None:
        now = time.monotonic()
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is not None:
                self._exited(worker, worker.process, now)
            elif worker.process is None and not self.stopping and now >= worker.restart_at:
                self._start(worker)

    def _exited(self, worker: Worker, process: subprocess.Popen[bytes], now: float) -> None:
        worker.process = None
        self.on_exit(process.pid)
        status = _status(process.returncode)
        if self.stopping:
            if process.returncode != 0:
                self.failed = True
                logger.error(
                    "worker %d (pid %d) %s while stopping", worker.index, process.pid, status
                )
            return
        quick = now - worker.started_at < self.policy.quick
        worker.quick_exits = worker.quick_exits + 1 if quick else 0
        if worker.quick_exits >= self.policy.give_up_after:
            logger.error(
                "worker %d %s %d times in a row within %g s of starting: giving up",
                worker.index,
                status,
                worker.quick_exits,
                self.policy.quick,
            )
            self.failed = True
            self._stop(signal.SIGTERM)
            return
        delay = self.policy.delay(worker.quick_exits)
        worker.restart_at = now + delay
        logger.warning(
            "worker %d (pid %d) %s: restarting it in %g s", worker.index, process.pid, status, delay
        )

    def _signalled(self, signum: int, frame: FrameType | None) -> None:
        logger.info("%s: stopping the workers", signal.Signals(signum).name)
        self._stop(signum)

    def _stop(self, signum: int) -> None:
        if not self.stopping:
            self.stopping = True
            self.on_stop()
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.send_signal(signum)

    def _kill_all(self) -> None:
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()
                self.on_exit(worker.process.pid)


def _status(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"
