"""The supervisor of `run_exchange`: starts the exchange's processes, restarts one that dies, stops them all in
order, and never leaves one behind.

- A child that exits on its own is started again after a backoff (1 s, doubling to 30 s; back to 1 s once it
  has run a minute), while the others keep serving: the inbox is durable, so a restarted worker redoes
  exactly what its predecessor had not committed.
- Each child runs in a session of its own (a terminal's Ctrl-C reaches only the supervisor, which stops the
  children in order) and is told by the kernel to stop when the supervisor dies, even by SIGKILL
  (`PR_SET_PDEATHSIG`).
- A stop goes in stages, each with its deadline: first what serves HTTP and websockets (they stop accepting
  and finish the requests in flight), then the matching workers (each finishes its batch in hand), then the
  rest. What has not stopped by its deadline is killed.
- The supervisor and its children are written to a pid file; a start that finds any of them alive names them
  and refuses to start a second exchange beside them (it would find the port taken and wait on the shards).
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

POLL_SECONDS = 0.2
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
STABLE_AFTER_SECONDS = 60.0
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ChildProcess:
    """One long-running process: a name for the logs, its command line, extra environment, and the stage of a
    stop it belongs to (lower stops first) with that stage's deadline."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stop_stage: int = 0
    stop_seconds: float = 10.0


@dataclass
class Running:
    child: ChildProcess
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    backoff: float = FIRST_BACKOFF_SECONDS
    restart_at: float | None = None          # set while it waits to be started again


class AlreadyRunning(RuntimeError):
    """Processes of another exchange are alive; the message names them."""


class Supervisor:
    def __init__(self, children: list[ChildProcess], write: Callable[[str], None], pid_file: Path) -> None:
        self.running = {child.name: Running(child) for child in children}
        self.write = write
        self.pid_file = pid_file
        self.stop_requested = False

    def run(self) -> int:
        """Runs until SIGINT or SIGTERM, then stops everything; returns the exit status (0)."""
        refuse_if_alive(self.pid_file)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        try:
            for running in self.running.values():
                self.start(running)
            while not self.stop_requested:
                self.look_after_children()
                time.sleep(POLL_SECONDS)
            self.write("stop requested; stopping the exchange")
        finally:
            self.stop_all()
            self.pid_file.unlink(missing_ok=True)
        return 0

    def request_stop(self, signum: int, frame: object) -> None:
        self.stop_requested = True

    def start(self, running: Running) -> None:
        child = running.child
        running.process = subprocess.Popen(child.argv, env={**os.environ, **child.env}, start_new_session=True,
                                           preexec_fn=stop_with_parent)
        running.started_at, running.restart_at = time.monotonic(), None
        self.write(f"started {child.name} (pid {running.process.pid}): {' '.join(child.argv)}")
        self.record_pids()

    def look_after_children(self) -> None:
        now = time.monotonic()
        for running in self.running.values():
            if running.restart_at is not None:
                if now >= running.restart_at:
                    self.start(running)
                continue
            code = running.process.poll() if running.process is not None else None
            if code is None:
                continue
            if now - running.started_at >= STABLE_AFTER_SECONDS:
                running.backoff = FIRST_BACKOFF_SECONDS
            running.restart_at = now + running.backoff
            self.write(f"{running.child.name} exited with code {code}; starting it again in {running.backoff:g} s")
            running.backoff = min(running.backoff * 2, MAX_BACKOFF_SECONDS)

    def stop_all(self) -> None:
        """SIGTERM each stage's children, wait for them up to the stage's deadline, SIGKILL what is left."""
        for stage in sorted({running.child.stop_stage for running in self.running.values()}):
            members = [(running, running.process) for running in self.running.values()
                       if running.child.stop_stage == stage and running.process is not None]
            for _, process in members:
                signal_group(process, signal.SIGTERM)
            for running, process in members:
                self.wait_or_kill(running.child, process)

    def wait_or_kill(self, child: ChildProcess, process: subprocess.Popen) -> None:
        try:
            process.wait(child.stop_seconds)
        except subprocess.TimeoutExpired:
            self.write(f"{child.name} did not stop in {child.stop_seconds:g} s; killing it")
            signal_group(process, signal.SIGKILL)
            process.wait()
        self.write(f"{child.name} stopped")

    def record_pids(self) -> None:
        """Each process as (pid, start time): a pid alone may name another process after it is reused."""
        processes = {"supervisor": os.getpid(), **{name: running.process.pid for name, running in self.running.items()
                                                    if running.process is not None}}
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(json.dumps({name: [pid, start_time(pid)] for name, pid in processes.items()}))


def refuse_if_alive(pid_file: Path) -> None:
    """Raises AlreadyRunning naming the processes of the pid file that are still alive."""
    try:
        recorded = json.loads(pid_file.read_text())
    except (OSError, ValueError):
        return
    alive = {name: pid for name, (pid, started) in recorded.items()
             if pid != os.getpid() and started is not None and start_time(pid) == started}
    if alive:
        listed = ", ".join(f"{name} (pid {pid})" for name, pid in alive.items())
        raise AlreadyRunning(f"processes of another exchange are still running: {listed}. Stop them first"
                             f" (kill {' '.join(str(pid) for pid in alive.values())}).")


def start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[19])


def stop_with_parent() -> None:
    """Runs in the child before it starts: the kernel sends it SIGTERM when the supervisor dies, however. If
    the supervisor died before this line, the child is already an orphan and stops at once."""
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def signal_group(process: subprocess.Popen, signum: int) -> None:
    """Signal the child and anything it started (its own session, so its own process group)."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass  # already gone: nothing left to stop
