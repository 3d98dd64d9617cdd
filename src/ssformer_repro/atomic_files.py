"""Files written atomically: a reader sees the old file or the complete new one, never a torn one.

Shared by checkpoints, the catalog's file datasets and the training history; torch-free so that
Kedro can build catalog datasets without importing it. A full disk becomes a DiskFullError that
names the file and says what to do.
"""

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
PARTIAL_WRITE_GLOB = ".*.tmp"


class DiskFullError(OSError):
    """A file could not be written because its disk (or disk quota) is full."""


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` is "no space left on device" or "disk quota exceeded"."""
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS


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


def write_atomically(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a file through `write(handle)` so that `path` is either the old or the complete new file.

    The data goes to a temporary file in the same folder, is flushed to disk, and then replaces
    `path` in one rename; a failure removes the temporary file and leaves `path` untouched. A full
    disk raises DiskFullError naming `path`. A process killed mid-write leaves only a hidden
    `.<name>.*.tmp` file, which nothing reads (`remove_partial_writes` deletes it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(handle, "wb") as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        if is_disk_full(error):
            raise DiskFullError(error.errno, explain_disk_full(error, path)) from error
        raise
    fsync_folder(path.parent)


def remove_partial_writes(folder: str | Path) -> list[Path]:
    """Delete the temporary files that writers killed mid-write left in `folder`; return them.

    Call it only while no other process writes to `folder` (the run's lock guarantees that).
    """
    leftovers = sorted(Path(folder).glob(PARTIAL_WRITE_GLOB))
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


def _free_bytes(folder: Path) -> int | None:
    """Free bytes of the file system holding `folder` (or its nearest existing parent)."""
    for candidate in (folder, *folder.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None
