"""Run directories: checked before anything is built, locked while in use, never silently replaced.

A run directory holds ``config.json``, ``log.jsonl``, ``success.jsonl``, ``checkpoint.pt`` and
``model/`` (the record format: :mod:`rlvrlens.core.records`). :func:`prepare` checks that ``out`` can be a run directory (not empty, not a file,
writable), refuses one that holds a run unless the caller resumes it or overwrites it, and takes
its :class:`RunLock`. JSONL files are appended one complete line at a time; :func:`complete_lines`
ignores a partial last line (a kill or a full disk during a write), which a resume truncates.
Imports no torch.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import weakref
from pathlib import Path
from typing import Any, Callable

from rlvrlens.core.records import CHECKPOINT, CONFIG, LOCK, LOG, MODEL, SUCCESS, append_lines, complete_lines

#: Files and folders a run writes (``--overwrite`` removes these and nothing else).
RUN_FILES = (CONFIG, LOG, SUCCESS, CHECKPOINT, CHECKPOINT + ".tmp", MODEL, MODEL + ".tmp")


class RunDirError(ValueError):
    """The run directory holds another run, or is in use by another process."""


def check_out(out: str | os.PathLike) -> Path:
    """``out`` as a :class:`~pathlib.Path`, created if needed, after checking it can hold a run.

    Raises ``ValueError`` for an empty path, ``OSError`` (naming the path) when it is a file,
    sits under a file, or cannot be written.
    """
    if out is None or not str(out).strip():
        raise ValueError("the run directory (--out) must be a non-empty path")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"run directory {str(path)!r} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise _os_error(exc, f"cannot write to run directory {str(path)!r}") from None
    return path


def _os_error(exc: OSError, what: str) -> OSError:
    """``exc`` re-raised as one line: ``what`` and the reason (a full disk says so)."""
    if exc.errno == errno.ENOSPC:
        err = OSError(f"{what}: disk full (no space left on the device)")
        err.errno = errno.ENOSPC
        return err
    err = type(exc)(f"{what}: {exc.strerror or exc}")
    err.errno = exc.errno
    return err


def guard_write(what: str, action: Callable[[], Any]) -> Any:
    """Run ``action``; an ``OSError`` becomes one line naming ``what`` (ENOSPC: "disk full")."""
    try:
        return action()
    except OSError as exc:
        raise _os_error(exc, f"cannot write {what}") from None


def describe_run(path: Path) -> str | None:
    """A one-line summary of the run ``path`` holds (``None``: it holds none)."""
    present = [name for name in RUN_FILES if (path / name).exists()]
    if not present:
        return None
    summary = []
    try:
        config = json.loads((path / CONFIG).read_text())
        summary.append(f"task {config.get('task')!r}, scheme {config.get('scheme')!r}, "
                       f"M = {config.get('num_generations')}, {config.get('steps')} steps")
    except (OSError, ValueError):
        pass
    if (path / LOG).exists():
        summary.append(f"{complete_lines(path / LOG)[0]} logged steps")
    return f"{', '.join(summary) or 'a run'} ({', '.join(present)})"


def remove_run(path: Path) -> None:
    """Delete the files a run writes in ``path`` (nothing else)."""
    for name in RUN_FILES:
        target = path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


class RunLock:
    """``path/run.lock`` holding ``"PID HOST"`` while a run uses the directory.

    :meth:`acquire` refuses at once when a live process holds the lock (this process included: a
    second :class:`~rlvrlens.training.Trainer` on the same directory) and replaces a stale lock (its
    process on this host is gone, e.g. after ``kill -9``). The lock is released by :meth:`release`,
    when the owner is garbage-collected, or at interpreter exit.
    """

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK
        self._token = f"{os.getpid()} {socket.gethostname()}\n"
        self._finalizer: weakref.finalize | None = None

    def acquire(self, owner: object) -> None:
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is None:  # stale (or vanished meanwhile): take it over
                    self.path.unlink(missing_ok=True)
                    continue
                raise RunDirError(f"run directory {str(self.path.parent)!r} is in use by {holder} "
                                  f"(lock {str(self.path)!r}); wait for it to finish, or delete the lock "
                                  "if that process is not running") from None
            except OSError as exc:
                raise _os_error(exc, f"cannot create lock file {str(self.path)!r}") from None
            with os.fdopen(fd, "w") as fh:
                fh.write(self._token)
            self._finalizer = weakref.finalize(owner, _unlock, self.path, self._token)
            return
        raise RunDirError(f"could not take the lock {str(self.path)!r}")  # pragma: no cover (a race thrice)

    def release(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None

    def _holder(self) -> str | None:
        """Who holds the lock, or ``None`` if it is stale."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit():
            return f"an unreadable lock ({text[:40]!r})"
        pid, host = int(parts[0]), parts[1]
        if host != socket.gethostname():
            return f"process {pid} on host {host}"
        if pid == os.getpid():
            return f"this process (pid {pid}; another Trainer on the same directory: close() it first)"
        return f"process {pid}" if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped) is not running
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _unlock(path: Path, token: str) -> None:
    try:
        if path.read_text() == token:
            path.unlink()
    except OSError:
        pass


def prepare(out: str | os.PathLike, *, resume: bool, overwrite: bool, owner: object) -> tuple[Path, RunLock]:
    """Check ``out``, lock it for ``owner``, and clear it when ``overwrite``; see the module docstring.

    A directory that holds a run is refused unless ``resume`` (the caller then checks that the
    run is the same) or ``overwrite`` (its run files are deleted). Leftover temporary files of an
    interrupted checkpoint or model write are removed.
    """
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other: continue the run, or replace it")
    path = check_out(out)
    lock = RunLock(path)
    lock.acquire(owner)
    try:
        held = describe_run(path)
        if held is not None and not (resume or overwrite):
            raise RunDirError(f"run directory {str(path)!r} already holds a run: {held}; pass --resume "
                              "(resume=True) to continue it or --overwrite (overwrite=True) to replace it")
        if overwrite:
            guard_write(f"run directory {str(path)!r}", lambda: remove_run(path))
        for name in (CHECKPOINT + ".tmp", MODEL + ".tmp"):
            leftover = path / name
            if leftover.is_dir():
                shutil.rmtree(leftover)
            elif leftover.exists():
                leftover.unlink()
    except BaseException:
        lock.release()
        raise
    return path, lock


def truncate_lines(path: Path, n: int) -> None:
    """Keep the first ``n`` complete lines of ``path`` (one ``truncate``: safe against a kill)."""
    have, _ = complete_lines(path)
    if have < n:
        raise ValueError(f"{str(path)!r} has fewer complete lines ({have}) than its checkpoint recorded ({n})")
    size = 0
    with open(path, "rb") as fh:
        for _ in range(n):
            size += len(fh.readline())
    guard_write(str(path), lambda: os.truncate(path, size))


def append_line(path: Path, record: dict) -> None:
    """Append one JSON line, flushed and fsynced (a kill leaves at most a partial last line)."""
    guard_write(str(path), lambda: append_lines(path, [record]))
