"""Writing files so that no half-written file ever stands under its final name."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

TMP_PREFIX = "."
TMP_SUFFIX = ".tmp"


def temp_name(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place (hidden, same directory)."""
    return path.with_name(f"{TMP_PREFIX}{path.name}{TMP_SUFFIX}")


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(f)`` on a temporary file, flush it to disk, then rename it to ``path``.

    If anything goes wrong (including Ctrl-C), the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def write_json(path: str | Path, data: Any) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def read_json(path: str | Path) -> Any:
    """A JSON file's contents, or None when it is missing or unreadable (callers treat both as
    "not there yet")."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def remove_stale_temps(directory: Path, pattern: str = "*") -> int:
    """Delete temporary files left by an interrupted run; returns how many."""
    stale = list(directory.glob(f"{TMP_PREFIX}{pattern}{TMP_SUFFIX}"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return len(stale)
