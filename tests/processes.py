"""Start a command that starts other processes (accelerate launch and its ranks) so that all of
them end with the test: the command gets a session of its own, and on a timeout, or whatever
happens, every process still in that session is killed, not only the launcher (a rank whose
launcher died lives on under PID 1 and holds the machine)."""

from __future__ import annotations

import os
import signal
import subprocess


def session_members(sid: int) -> list[int]:
    """PIDs of the live processes in session `sid` (field 6 of /proc/PID/stat)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:  # ended while listed
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after the command name, which may hold spaces
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(entry))
    return pids


def kill_session(sid: int) -> None:
    for pid in session_members(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_session(cmd: list[str], *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run(cmd, capture_output=True, text=True) in a new session. Raises
    TimeoutExpired after killing the whole session; returns with `left` set to the PIDs that were
    still alive in the session when the command returned (then killed)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        kill_session(proc.pid)
        proc.kill()
        proc.communicate()
        raise
    left = session_members(proc.pid)
    kill_session(proc.pid)
    done = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    done.left = left
    return done
