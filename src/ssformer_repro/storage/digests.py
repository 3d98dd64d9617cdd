"""Content digests (MD5) of files, folders, tables, arrays and source packages.

They key what a run's result depends on (training.run) and the inputs of DVC's stages
(grid/dvc_inputs.py): equal contents give equal digests, whatever the file times.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

CHUNK = 1 << 20
# The packages whose code a trained model and its scores depend on (not reporting, the tools,
# the benchmark or the docs): a change there makes a run's fingerprint change.
RESULT_PACKAGES = ("polyps", "models", "training", "evaluation")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def path_digest(path: str | Path | None) -> str | None:
    """MD5 of a file, or of a folder's file names and contents; None when there is no such path."""
    if path is None or not Path(path).exists():
        return None
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    digest = hashlib.md5()
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode())
        with file.open("rb") as stream:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()


def package_digest(package: str | Path) -> str:
    """MD5 of a source package's Python files (names and contents; bytecode caches left out)."""
    package = Path(package)
    digest = hashlib.md5()
    for file in sorted(package.rglob("*.py")):
        digest.update(file.relative_to(package).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def bytes_digest(parts: Iterable[bytes | memoryview]) -> str:
    """MD5 of byte strings (or buffers such as numpy arrays) taken in order."""
    digest = hashlib.md5()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def result_code_digests() -> dict[str, str]:
    """`package_digest` of each of RESULT_PACKAGES, from the code that is running."""
    return {name: package_digest(PACKAGE_ROOT / name) for name in RESULT_PACKAGES}
