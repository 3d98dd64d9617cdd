"""Results kept with what they were computed from, so that computing the same again is a read.

A record is a JSON file holding a `key` (what the result depends on: settings, content digests,
code) and, optionally, the result itself; bulkier results are files beside it. A test split's
scores and example figure (evaluation/evaluate.py) and the model-size table (models/sizes.py)
are kept this way; a trained run keeps its fingerprint in its `last.pt` instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssformer_repro.storage.atomic import write_atomically


def stored_record(record: Path, key: Mapping[str, Any], *results: Path) -> dict | None:
    """`record`'s contents when it was written with `key` and every file of `results` exists;
    None otherwise (no record, another key, a missing result, an unreadable record)."""
    if not (record.is_file() and all(result.is_file() for result in results)):
        return None
    try:
        stored = json.loads(record.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return stored if isinstance(stored, dict) and stored.get("key") == key else None


def store_record(
    record: Path, contents: Mapping[str, Any], results: Mapping[Path, bytes] | None = None
) -> None:
    """Write each result file, then `record` with `contents` (its `key` included): a record
    always describes result files that are complete."""
    for path, data in (results or {}).items():
        write_atomically(path, lambda file, data=data: file.write(data))
    text = json.dumps(contents, indent=2).encode()
    write_atomically(record, lambda file: file.write(text))
