"""Files and folders written atomically: a reader sees the old one or the complete new one.

The one home of atomic writes, shared by checkpoints, the training history, the catalog's file
datasets, the decoded cache and the synthetic datasets. Torch-free, so that Kedro can build
catalog datasets without importing it. A full disk becomes a DiskFullError that names the file
and says what to do.

- `atomic_path(path)`: yields a hidden temporary path beside `path`; whatever is written there
  replaces `path` in one rename when the block ends without error.
- `write_atomically(path, write)`: the same for a writer of an open binary file.
- `atomic_folder(path)`: yields a hidden staging folder that replaces the folder `path`.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ssformer_repro.errors import UserError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# Temporary files start with "." and end with this, before the real suffix; see `atomic_path`.
PARTIAL_MARK = ".partial"


class DiskFullError(UserError, OSError):
    """A file could not be written because its disk (or disk quota) is full."""


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` is "no space left on device" or "disk quota exceeded"."""
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS


def disk_full_cause(error: BaseException | None) -> OSError | None:
    """The "disk full" OSError behind `error` (Kedro wraps save errors in DatasetError), if any."""
    while error is not None:
        if is_disk_full(error):
            return error  # type: ignore[return-value]
        error = error.__cause__ or error.__context__
    return None


def explain_disk_full(error: OSError, path: str | Path) -> str:
    """Which file could not be written, how much space is left there, and what to do."""
    path = Path(path)
    free = _free_bytes(path.parent)
    free_text = f"{free / 2**30:.2f} GiB free" if free is not None else "free space unknown"
    what = "disk quota exceeded" if error.errno == errno.EDQUOT else "no space left on device"
    return (
        f"{what} while writing {path} ({free_text} on that file system). The previous "
        f"{path.name}, if any, is intact. Free space there (e.g. delete old runs or MLflow "
        "artifacts) or point the output folder at a larger disk, then re-run: training resumes "
        "from the last checkpoint."
    )


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is flushed and renamed over `path`.

    The temporary name is `.<stem>.<tag>.partial<suffix>`: hidden, and ending in the real suffix
    (some writers, e.g. matplotlib, take the format from it). On an error it is removed and
    `path` is untouched; a full disk raises DiskFullError naming `path`. A process killed
    mid-write leaves only the hidden file, which nothing reads (`remove_partial_writes`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}{PARTIAL_MARK}{path.suffix}")
    try:
        try:
            yield partial
            with open(partial, "rb+") as file:
                os.fsync(file.fileno())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        fsync_folder(path.parent)
    except Exception as error:
        cause = disk_full_cause(error)
        if cause is not None and not isinstance(error, DiskFullError):
            raise DiskFullError(cause.errno, explain_disk_full(cause, path)) from error
        raise


def write_atomically(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Write `path` through `write(handle)`, so that it is either the old or the complete new file."""
    with atomic_path(path) as partial, open(partial, "wb") as file:
        write(file)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a hidden staging folder beside `path` that replaces the folder `path` on success.

    The old folder is renamed away before the new one is renamed in, and deleted only after, so
    a reader sees the old or the new folder complete (or, after a crash between the two renames,
    none), never a half-written one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.writing-", dir=target.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private (0700); follow the umask
    try:
        yield staging
        retired = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        if target.exists():
            target.rename(retired)
        try:
            staging.rename(target)
        except OSError:
            if retired.exists():
                retired.rename(target)
            raise
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def remove_partial_writes(folder: str | Path, of: str | Path | None = None) -> list[Path]:
    """Delete the temporary files that writers killed mid-write left in `folder`; return them.

    With `of`, only those of that one file. Call it only while no other process writes these
    files (the run's lock guarantees that).
    """
    pattern = f".{Path(of).stem}.*{PARTIAL_MARK}{Path(of).suffix}" if of else f".*{PARTIAL_MARK}*"
    leftovers = sorted(file for file in Path(folder).glob(pattern) if file.is_file())
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


def fsync_folder(folder: Path) -> None:
    """Persist a rename inside `folder` (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _umask() -> int:
    """The process's umask (os.umask can only be read by setting it)."""
    current = os.umask(0o022)
    os.umask(current)
    return current


def _free_bytes(folder: Path) -> int | None:
    """Free bytes of the file system holding `folder` (or its nearest existing parent)."""
    for candidate in (folder, *folder.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


ON_EXISTING = ("refuse", "new")


class ExistingResultError(UserError, FileExistsError):
    """An output folder already holds an earlier result, which is never written over."""


def unused_folder(folder: str | Path, on_existing: str, setting: str) -> Path:
    """`folder` if it does not exist yet; else refuse (`on_existing: refuse`) or the first free
    `<folder>-2`, `<folder>-3`... (`new`), so an earlier result is never written over.
    `setting` names the parameter that chooses, for the messages."""
    folder = Path(folder)
    if on_existing not in ON_EXISTING:
        raise ValueError(f"{setting} must be one of {ON_EXISTING}, got {on_existing!r}.")
    if not folder.exists():
        return folder
    if on_existing == "refuse":
        raise ExistingResultError(
            f"{folder} holds an earlier result, which is never written over. Pass "
            f"`--params={setting}=new` for a new folder beside it, or move it away."
        )
    number = 2
    while folder.with_name(f"{folder.name}-{number}").exists():
        number += 1
    return folder.with_name(f"{folder.name}-{number}")
