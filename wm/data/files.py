"""Writing files so that no half-written file ever stands under its final name."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from wm.core.errors import WMError, names_its_file

TMP_PREFIX = "."
TMP_SUFFIX = ".tmp"


def temp_name(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place: hidden, in the same directory, and
    unique to this call (``.NAME.<pid>-<random>.tmp``), so two processes writing one file never write
    into, rename or delete each other's temporary file."""
    return path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TMP_SUFFIX}")


@names_its_file  # (a full disk's error names the file, not its temporary one)
def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(f)`` on a temporary file, flush it to disk, then rename it to ``path``.

    If anything goes wrong (including Ctrl-C), the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp = temp_name(path)
    f = open(tmp, "xb")  # ("x": never into a file that exists, so the cleanup below is always ours)
    try:
        with f:
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


def check_plain_name(flag: str, name: str) -> None:
    """Refuse a name that is not one plain, visible file name (a path, '..', empty, hidden): a name
    given on the command line must not write outside its stage's directory or over another file."""
    if not name.strip() or name.startswith(".") or any(c in name for c in ("/", "\\", "\0")):
        raise WMError(f"{flag} must be a plain file name (no '/', not empty, not starting with '.'), "
                      f"got {name!r}")


def remove_stale_temps(directory: Path, pattern: str = "*") -> int:
    """Delete temporary files left by an interrupted run; returns how many. Only for a directory
    the caller holds the lock of: a temporary file of a live writer looks the same."""
    stale = {*directory.glob(f"{TMP_PREFIX}{pattern}{TMP_SUFFIX}"),
             *directory.glob(f"{TMP_PREFIX}{pattern}.*{TMP_SUFFIX}")}
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return len(stale)
