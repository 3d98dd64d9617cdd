"""One writer at a time: a second `kedro run` writing the same outputs is refused, naming the holder.

A lock is a `filelock.FileLock` (flock on POSIX, msvcrt on Windows) on `<name>.lock`. The
operating system drops it when the holder's process ends, however it ends (SIGKILL,
out-of-memory kill, power loss), so a lock left behind by a dead run never blocks the next one.
The holder writes who it is (pid, host, start time, command) into `<name>.lock.holder` beside
it, which a refused run quotes. Under torchrun only rank 0, the process that writes, takes locks.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ssformer_repro.errors import UserError

HOLDER_SUFFIX = ".holder"


class RunLockedError(UserError, RuntimeError):
    """Another live process holds the lock on the same outputs."""


@contextmanager
def run_lock(lock_path: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on `lock_path` for the block; refuse at once if another process has it.

    `lock_path` is a file (e.g. `data/.locks/kvasir.lock`); its folder is created if needed.
    """
    lock_path = Path(lock_path)
    if not _takes_locks():
        yield lock_path
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    holder = lock_path.with_name(lock_path.name + HOLDER_SUFFIX)
    lock = FileLock(lock_path, timeout=0, is_singleton=False, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise RunLockedError(_refusal(lock_path, holder)) from None
    try:
        holder.write_text(json.dumps(_this_process()), encoding="utf-8")
        yield lock_path
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


@contextmanager
def run_locks(lock_paths: Iterable[str | Path]) -> Iterator[list[Path]]:
    """Hold several locks (in sorted order) for the block; taking none if any is held elsewhere."""
    with ExitStack() as stack:
        yield [stack.enter_context(run_lock(path)) for path in sorted(map(Path, lock_paths))]


def namespace_lock_path(folder: str | Path, namespace: str) -> Path:
    """The lock file of one Kedro namespace, e.g. `<folder>/kvasir.mit_b0.pld.lock`."""
    return Path(folder) / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', namespace)}.lock"


def _takes_locks() -> bool:
    """Whether this process writes outputs: any process but the non-zero ranks of torchrun."""
    return int(os.environ.get("RANK", "0")) == 0


def _this_process() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv)[:300],
    }


def _refusal(lock_path: Path, holder_path: Path) -> str:
    """The message for a refused lock: the file, who holds it, and what to do."""
    try:
        holder = json.loads(holder_path.read_text(encoding="utf-8"))
        who = (
            f"process {holder['pid']} on host {holder['host']} since {holder['since']} "
            f"({holder['command']})"
        )
    except (OSError, ValueError, KeyError, TypeError):
        who = "another process (it has not recorded itself yet)"
    return (
        f"{lock_path} is locked by {who}: another run is writing these outputs right now. "
        "Wait for it to finish or stop it, then re-run (an interrupted run resumes from its "
        "last checkpoint). The lock is released automatically when its process ends, however "
        "it ends; never delete the lock file to get past this."
    )
