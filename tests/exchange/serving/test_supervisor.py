"""The supervisor of `make run`: a crashed child comes back while the others keep serving, no child outlives
the supervisor, a second exchange is refused while the first one's processes live, and a stop goes in stages.

The supervisor runs in a process of its own with small stand-in children that note what happens to them."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from exchange.serving.supervisor import AlreadyRunning, refuse_if_alive, start_time

ROOT = Path(__file__).resolve().parents[3]
# A stand-in child: notes its start, and on SIGTERM notes the moment and leaves after a pause.
CHILD = textwrap.dedent("""
    import os, signal, sys, time
    log, name = sys.argv[1], sys.argv[2]
    def note(what):
        with open(log, "a") as out:
            out.write(f"{time.monotonic()} {name} {what} {os.getpid()}\\n")
    def stop(signum, frame):
        note("term")
        time.sleep(0.3)
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    note("start")
    while True:
        time.sleep(0.05)
""")


def supervisor_script(tmp_path: Path, stages: dict[str, int]) -> str:
    children = [f"ChildProcess({name!r}, [sys.executable, '-c', CHILD, {str(tmp_path / 'log')!r}, {name!r}],"
                f" stop_stage={stage}, stop_seconds=5)" for name, stage in stages.items()]
    return textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from exchange.serving.supervisor import ChildProcess, Supervisor
        CHILD = {CHILD!r}
        children = [{", ".join(children)}]
        sys.exit(Supervisor(children, lambda line: print(line, flush=True), Path({str(tmp_path / 'pids')!r})).run())
    """)


def start_supervisor(tmp_path: Path, stages: dict[str, int]) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", supervisor_script(tmp_path, stages)], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    wait_for(lambda: len(events(tmp_path, "start")) >= len(stages), "every child to start")
    return process


def events(tmp_path: Path, what: str) -> list[tuple[float, str, int]]:
    log = tmp_path / "log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(float(at), name, int(pid)) for at, name, kind, pid in (line.split() for line in lines) if kind == what]


def wait_for(condition, message: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {message}"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    return start_time(pid) is not None


def test_a_crashed_child_is_started_again_while_the_others_keep_running(tmp_path):
    supervisor = start_supervisor(tmp_path, {"web": 0, "worker": 1})
    try:
        first = {name: pid for _, name, pid in events(tmp_path, "start")}

        os.kill(first["worker"], signal.SIGKILL)

        wait_for(lambda: len(events(tmp_path, "start")) == 3, "the worker to be started again")
        restarted = events(tmp_path, "start")[-1]
        assert restarted[1] == "worker" and restarted[2] != first["worker"]
        assert alive(first["web"]) and [name for _, name, _ in events(tmp_path, "start")].count("web") == 1
    finally:
        supervisor.terminate()
        supervisor.wait(20)


def test_no_child_outlives_a_killed_supervisor(tmp_path):
    supervisor = start_supervisor(tmp_path, {"web": 0, "worker": 1, "beat": 2})
    children = [pid for _, _, pid in events(tmp_path, "start")]

    supervisor.kill()
    supervisor.wait()

    wait_for(lambda: not any(alive(pid) for pid in children), "the children to stop with their supervisor")


def test_a_second_exchange_is_refused_while_the_first_ones_processes_live(tmp_path):
    supervisor = start_supervisor(tmp_path, {"web": 0, "worker": 1})
    try:
        worker = next(pid for _, name, pid in events(tmp_path, "start") if name == "worker")
        with pytest.raises(AlreadyRunning, match=rf"worker \(pid {worker}\)"):
            refuse_if_alive(tmp_path / "pids")
    finally:
        supervisor.terminate()
        supervisor.wait(20)
    refuse_if_alive(tmp_path / "pids")        # all gone: a new start is welcome


def test_a_stale_pid_file_of_processes_long_gone_does_not_block_a_start(tmp_path):
    pid_file = tmp_path / "pids"
    pid_file.write_text(json.dumps({"web": [os.getpid(), 1], "worker": [999_999_999, 5]}))

    refuse_if_alive(pid_file)


def test_a_stop_ends_the_serving_processes_before_the_workers_and_the_workers_before_the_rest(tmp_path):
    supervisor = start_supervisor(tmp_path, {"web": 0, "websockets": 0, "worker": 1, "beat": 2})

    supervisor.terminate()

    assert supervisor.wait(20) == 0
    terms = {name: at for at, name, _ in events(tmp_path, "term")}
    # Each stage waits for the one before it, which takes its 0.3 s to leave.
    assert max(terms["web"], terms["websockets"]) + 0.25 < terms["worker"] < terms["beat"] - 0.25
    assert not (tmp_path / "pids").exists()
