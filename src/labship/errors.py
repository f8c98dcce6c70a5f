"""labship's one exception hierarchy.

Every module raises a subclass of `LabshipError`; each instance carries the exit status the task
layer returns (`labship.tasks` maps them in one place), and its message is written for the user:
it names the file, key, line or service, and says what to do next. Anything that is not a
`LabshipError` is a bug and keeps its traceback.

Exit statuses (stable, documented in the README):
    1  the operation failed (bad input, build/convert/launch failed, data out of sync)
    2  configuration error (`pyproject.toml`, a flag, a Copier answer)
    3  a remote or service cannot be reached
    4  credentials missing or refused, or a permission is missing
    5  data lost (not in the workspace, the cache or the remote)
"""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_UNREACHABLE = 3
EXIT_CREDENTIALS = 4
EXIT_LOST = 5


class LabshipError(Exception):
    """Base of every error labship reports to a user; `exit_code` is the task's exit status."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        """The user-facing text (no traceback, no class name)."""
        return str(self)
