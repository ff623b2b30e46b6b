"""One writer per output folder: an OS file lock on `FOLDER/.lock`.

The lock is `fcntl.flock` on an open file, so the operating system releases it when the holder
exits, however it exits (kill -9 included): there is never a stale lock to clean up by hand. The
file keeps the holder's PID and command, so that a second command on the same folder can say
who holds it. The file stays after a run; a run refused for bad input (exit 2) takes back what
the lock added, the file and the folders it created, so that a refused run changes nothing. A
holder checks, once locked, that the file it locked is still the one at the path (a refused run
may just have removed it), so that two processes never hold two files of the same name.
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
        self._created: list[Path] = []  # what acquire() added: folders, outermost last, then the lock file

    def acquire(self) -> "FolderLock":
        path = self.folder / LOCK_NAME
        self._created = [p for p in (self.folder, *self.folder.parents) if not p.exists()]
        while True:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                self._created.insert(0, path)
            except FileExistsError:
                fd = self._open(path)
            except OSError as e:
                raise InputError(f"cannot write to {self.what} {self.folder}: {e.strerror or e}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                raise FolderBusy(f"{self.folder}: this {self.what} is in use by {holder}; wait for it to "
                                 "end (or stop it) and run again") from None
            if self._still_there(fd, path):
                break
            os.close(fd)  # a refused run removed it between our open and our lock: lock the new one
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} ({' '.join(Path(a).name for a in sys.argv[:1])})\n".encode(), 0)
        self._fd = fd
        return self

    def _open(self, path: Path) -> int:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise InputError(f"cannot write to {self.what} {self.folder}: {e.strerror or e}") from None

    @staticmethod
    def _still_there(fd: int, path: Path) -> bool:
        try:
            return os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def release(self, undo: bool = False) -> None:
        """Unlock; with `undo` (the run was refused), first remove the lock file and the folders
        that acquire() created, where nothing else was written into them."""
        if self._fd is None:
            return
        if undo:
            for created in self._created:
                try:
                    created.unlink() if created.name == LOCK_NAME and created.parent == self.folder else created.rmdir()
                except OSError:  # something else is in it now: it stays, and so do the folders above it
                    break
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, kind, error, tb) -> None:
        self.release(undo=isinstance(error, InputError))
