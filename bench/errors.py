"""The exceptions for mistakes a user can cause, every exit status of the command line, and SIGTERM, once.

The CLI turns a BenchError into one line on stderr and EXIT_BAD_INPUT, never a traceback;
an interrupt into EXIT_INTERRUPTED, and SIGTERM (:class:`Terminated`) into EXIT_TERMINATED.
"""

import contextlib
import signal
from collections.abc import Iterator

EXIT_OK = 0
# run, sweep: a kernel was not ``ok``; compare, history: a regression; check: the kernel is wrong.
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143


class BenchError(Exception):
    """A user-facing error whose message is complete on its own."""


class DataError(BenchError):
    """A data file is missing, truncated, corrupt or fails its checksum."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as an interrupt: ``finally`` blocks run and what was measured is saved."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` inside the block; the previous handler is restored after it.

    ``timeout`` (as in .ci/regression) and service managers stop a command with SIGTERM:
    unwinding as an interrupt saves results already measured, removes worktrees, and
    makes ``subprocess.run`` kill its running child. Outside the main thread signals
    cannot be set, and are left alone.
    """
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted_status(exc: KeyboardInterrupt) -> int:
    """Return the exit status of an interrupt: EXIT_TERMINATED for SIGTERM, else EXIT_INTERRUPTED (Ctrl-C)."""
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
