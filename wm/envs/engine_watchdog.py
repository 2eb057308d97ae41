"""End a game engine's process when the process that started it dies, however it dies.

ViZDoom runs its engine as a child process (started in ``DoomGame.init()``) that is never told when
its parent dies. After a SIGKILL of an MPI rank the engine lived on, holding the rank's stdout and
stderr; mpirun waits for those to close before it counts the rank as gone, so the whole job hung for
minutes. So the rank starts a tiny watchdog before the engine: a shell blocked reading a pipe whose
only writer is the rank. When the rank ends in any way (exit, exception, SIGKILL) the kernel closes
that pipe, the read returns, and the watchdog kills every process working in the engine's private
directory (the engine is started there: so no pid is needed, nothing is missed while the engine
starts, and a reused pid is never hit), then removes that directory and the engine's shared memory
in /dev/shm, which only a clean close removes (the rank tells the watchdog those files once the
engine runs; an engine killed while it starts names them on its command line).

The watchdog has a session of its own (a signal to the rank's process group does not end it before
its work) and no stdout/stderr of the job (it never keeps mpirun waiting itself).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from contextlib import suppress

# $1: the engine's directory; stdin: paths to remove as well, one a line, until EOF (the rank is gone).
_SCRIPT = """\
while IFS= read -r path; do set -- "$@" "$path"; done
for proc in /proc/[0-9]*; do
    [ "$proc/cwd" -ef "$1" ] || continue
    id=$(tr '\\0' '\\n' <"$proc/cmdline" 2>/dev/null | sed -n '/^+viz_instance_id$/{n;p;q;}')
    kill -9 "${proc#/proc/}" 2>/dev/null
    [ -n "$id" ] && set -- "$@" /dev/shm/ViZDoom*"$id"
done
rm -rf -- "$@"
"""


class EngineWatchdog:
    """Once this process has ended, kills the processes working in ``directory`` and removes it with
    the files given to :meth:`remove_too`, unless :meth:`stop` was called first."""

    def __init__(self, directory: str):
        # os.pipe() makes both ends close-on-exec: no engine or watchdog started later holds the write
        # end, which would keep the pipe open after this process is gone.
        read_end, write_end = os.pipe()
        try:
            self._process = subprocess.Popen(
                ["sh", "-c", _SCRIPT, "engine-watchdog", os.path.abspath(directory)], stdin=read_end,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/", start_new_session=True)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._pipe = os.fdopen(write_end, "w")

    @property
    def pid(self) -> int:
        return self._process.pid

    def remove_too(self, paths: Iterable[str]) -> None:
        """Files the engine made elsewhere, for the watchdog to remove after it."""
        with suppress(BrokenPipeError):  # (a watchdog killed by someone else: nothing to tell)
            self._pipe.write("".join(f"{path}\n" for path in paths if "\n" not in path))
            self._pipe.flush()

    def stop(self) -> None:
        """Disarm: end the watchdog without touching anything (before the engine is closed its own
        way). Calling it again does nothing."""
        if self._pipe.closed:
            return
        self._process.kill()
        self._process.wait()
        self._pipe.close()
