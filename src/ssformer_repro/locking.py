"""One writer at a time: a second `kedro run` writing the same outputs is refused, naming the holder.

A lock is `fcntl.flock` on a small file that also records its holder (pid, host, command). The
kernel drops the lock when the holder's process ends, however it ends (SIGKILL, out-of-memory
kill, power loss), so a lock left behind by a dead run never blocks the next one: its file is
simply reused. Under torchrun only rank 0, the process that writes, takes locks.
"""

from __future__ import annotations

import fcntl
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

from kedro.framework.hooks import hook_impl

LOCK_FILE_NAME = ".lock"


class RunLockedError(RuntimeError):
    """Another live process holds the lock on the same outputs."""


@contextmanager
def run_lock(lock_path: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on `lock_path` for the block; refuse at once if another process has it.

    `lock_path` is a file (e.g. `<run folder>/.lock`); its folder is created if needed. The file
    stays after release: deleting a flock file would let two processes lock different files.
    """
    lock_path = Path(lock_path)
    if not _takes_locks():
        yield lock_path
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(_refusal(lock_path, os.pread(descriptor, 4096, 0))) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(_this_process()).encode(), 0)
        try:
            yield lock_path
        finally:
            os.ftruncate(descriptor, 0)
    finally:
        os.close(descriptor)  # releases the lock


@contextmanager
def run_locks(lock_paths: Iterable[str | Path]) -> Iterator[list[Path]]:
    """Hold several locks (in sorted order) for the block; taking none if any is held elsewhere."""
    with ExitStack() as stack:
        yield [stack.enter_context(run_lock(path)) for path in sorted(map(Path, lock_paths))]


class RunLockHook:
    """Lock every namespace a `kedro run` writes before its first node, release after its last.

    Two runs of different namespaces (e.g. one grid run per GPU) go ahead side by side; a second
    run of a namespace that is being written is refused before it does any work.
    """

    def __init__(self, lock_folder: str = "data/.locks") -> None:
        self._lock_folder = Path(lock_folder)
        self._held: ExitStack | None = None

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        folder = self._lock_folder
        if not folder.is_absolute():
            folder = Path(run_params.get("project_path") or ".") / folder
        namespaces = sorted({node.namespace or "__default__" for node in pipeline.nodes})
        stack = ExitStack()
        stack.enter_context(run_locks(namespace_lock_path(folder, name) for name in namespaces))
        self._held = stack

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        self._release()

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline, catalog):
        self._release()

    def _release(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None


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


def _refusal(lock_path: Path, recorded: bytes) -> str:
    """The message for a refused lock: the file, who holds it, and what to do."""
    try:
        holder = json.loads(recorded.decode())
        who = (
            f"process {holder['pid']} on host {holder['host']} since {holder['since']} "
            f"({holder['command']})"
        )
    except (ValueError, KeyError, TypeError):
        who = "another process (it has not recorded itself yet)"
    return (
        f"{lock_path} is locked by {who}: another run is writing these outputs right now. "
        "Wait for it to finish or stop it, then re-run (an interrupted run resumes from its "
        "last checkpoint). The lock is released automatically when its process ends, however "
        "it ends; never delete the lock file to get past this."
    )
