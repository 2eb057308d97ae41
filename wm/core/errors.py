"""The one exception type for the user's mistakes: shown as one line, never as a traceback.

The machine's faults a user fixes without touching the code (a full disk, a quota, a read-only or
forbidden directory) arrive as :class:`OSError` from deep inside a stage; :func:`machine_errors`
turns them into a :class:`WMError` at one place, the stage's entry, so no stage needs its own
``try``. Every other OSError stays what it is, a bug, with its traceback.
"""

from __future__ import annotations

import errno
import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class WMError(Exception):
    """A bad input (file, flag, config) described in one line that names what is wrong."""


_AGAIN = "then run the same command again (what was already written is kept)"
# errno -> what the user does about it.
MACHINE_ERRNOS: dict[int, str] = {
    errno.ENOSPC: f"free some space, {_AGAIN}",
    errno.EDQUOT: f"free some space or raise the quota, {_AGAIN}",
    errno.EROFS: "use a writable directory (another --run), or remount this one read-write",
    errno.EACCES: "fix its permissions for this user, or use another directory",
    errno.EPERM: "fix its permissions for this user, or use another directory",
}


def machine_error_line(err: BaseException) -> str | None:
    """``PATH: no space left on device; free some space, ...`` for an OSError of the machine's
    state, or None for any other exception (a bug, which keeps its traceback)."""
    if not isinstance(err, OSError) or err.errno not in MACHINE_ERRNOS:
        return None
    what = err.strerror or os.strerror(err.errno)
    where = f"{err.filename}: " if err.filename is not None else "writing the run's files: "
    return f"{where}{what[:1].lower()}{what[1:]}; {MACHINE_ERRNOS[err.errno]}"


@contextmanager
def machine_errors() -> Iterator[None]:
    """Inside: an OSError of the machine's state becomes a :class:`WMError` of one line.

    Also from helper threads (TensorBoard writes its event files in one): a thread's such error
    is not printed as a traceback but kept, and raised here when the stage ends without an error
    of its own (TensorBoard raises it again in the stage's thread at its next call anyway).
    """
    from_threads: list[OSError] = []
    previous = threading.excepthook

    def hook(args: Any) -> None:
        if machine_error_line(args.exc_value) is None:
            previous(args)
        else:
            from_threads.append(args.exc_value)

    threading.excepthook = hook
    try:
        yield
        if from_threads:
            raise from_threads[0]
    except OSError as err:
        line = machine_error_line(err)
        if line is None:
            raise
        raise WMError(line) from err
    finally:
        threading.excepthook = previous


@contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """Inside: an OSError names ``path``, the file the user knows, rather than its hidden temporary
    file or nothing at all (a failed write or flush of an open file carries no name)."""
    try:
        yield
    except OSError as err:
        if err.errno is None:  # (raised by a library with a message of its own: nothing to name)
            raise
        raise OSError(err.errno, err.strerror, str(path)) from err


def names_its_file(write: F) -> F:
    """For a function whose first argument is the file it writes: its OSErrors name that file."""

    @functools.wraps(write)
    def wrapper(path: str | Path, *args: Any, **kwargs: Any) -> Any:
        with naming(path):
            return write(path, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
