"""The exceptions for mistakes a user can cause, and every exit status of the command line, once.

The CLI turns a BenchError into one line on stderr and EXIT_BAD_INPUT, never a traceback.
"""

import signal

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
