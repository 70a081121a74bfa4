"""The one exception type for mistakes a user can cause (bad paths, corrupt files, bad options).

The CLI turns it into one line on stderr and a non-zero exit, never a traceback.
"""


class BenchError(Exception):
    """A user-facing error whose message is complete on its own."""


class DataError(BenchError):
    """A data file is missing, truncated, corrupt or fails its checksum."""
