"""One writer per output folder: an OS file lock on `FOLDER/.lock`.

The lock is `fcntl.flock` on an open file, so the operating system releases it when the holder
exits, however it exits (kill -9 included): there is never a stale lock to clean up by hand. The
file keeps the holder's PID and command, so that a second command on the same folder can say
who holds it. The file itself stays (deleting it would let two processes lock two different
files of the same name).
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from .errors import InputError

LOCK_NAME = ".lock"


class FolderBusy(InputError):
    """Another live process writes to this folder."""


class FolderLock:
    def __init__(self, folder: str | Path, what: str = "output folder"):
        self.folder = Path(folder)
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> "FolderLock":
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise InputError(f"cannot write to {self.what} {self.folder}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise FolderBusy(f"{self.folder}: this {self.what} is in use by {holder}; wait for it to "
                             "end (or stop it) and run again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} ({' '.join(Path(a).name for a in sys.argv[:1])})\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
