"""tests/processes.py: what a test starts ends with it, the processes its command started too."""

import os
import subprocess
import time

import pytest

from tests.processes import run_session


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent to read its status."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_gone(pids, seconds=10.0) -> list[int]:
    deadline = time.time() + seconds
    while any(alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def test_a_timeout_kills_every_process_the_command_started(tmp_path):
    pids = tmp_path / "pids"
    # a shell and its two children, as a launcher and its ranks
    script = f"sleep 60 & echo $! >> {pids}; sleep 60 & echo $! >> {pids}; echo $$ >> {pids}; wait"
    started_at = time.time()
    with pytest.raises(subprocess.TimeoutExpired):
        run_session(["sh", "-c", script], timeout=2)
    assert time.time() - started_at < 30  # not held until the children end by themselves
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 3
    assert not wait_gone(started)


def test_a_process_left_behind_is_named_and_ended():
    done = run_session(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"], timeout=30)
    left = int(done.stdout.strip())
    assert done.returncode == 0 and done.left == [left]
    assert not wait_gone([left])
    assert os.getsid(0) != left  # the test's own session was never the command's
