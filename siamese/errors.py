"""The toolkit's own error types.

Every failure a user can cause (a bad file, a bad option, a missing dataset) is raised as a
subclass of :class:`SiameseError`, so the command-line tools can turn it into one clear line
and a non-zero exit code instead of a traceback.
"""

from __future__ import annotations

from os import PathLike


class SiameseError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class ConfigError(SiameseError, ValueError):
    """An argument, option or setting has a value the toolkit cannot use."""


class DataError(SiameseError, ValueError):
    """A data file could not be read, or its content is not what was expected.

    Args:
        message: What is wrong, in one sentence.
        path: The file concerned, if any.
        line: The 1-based line (or record) number in that file, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | PathLike[str] | None = None,
        line: int | None = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}, line {line}"
            where += ": "
        super().__init__(where + message)


class DatasetNotFoundError(DataError):
    """A named dataset is not on disk and could not be downloaded."""


class IndexFileError(SiameseError):
    """An index folder is missing, incomplete, corrupt, or does not match its tower."""


class Interrupted(SiameseError):
    """The user interrupted the work (Ctrl-C); what was saved is whole (the commands exit 130)."""


class EngineError(SiameseError):
    """A scale-out engine (Ray, ``tf.distribute``) is not installed, cannot be reached, or lost
    its workers; nothing already saved was changed."""
