"""Error types. Every user-facing error names the file, the field and the value."""

from __future__ import annotations

from pathlib import Path


class BenchmarkError(Exception):
    """Base class for errors the CLI reports as one clear line (no traceback)."""


class ConfigError(BenchmarkError):
    """A grid, profile or spec that does not validate."""


class DataError(BenchmarkError):
    """A prepared split, annotation file or image that is missing or malformed."""


class StorageError(BenchmarkError):
    """A file the suite writes could not be written (disk full, read-only, permissions)."""


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an Exception
    """SIGINT / SIGTERM stopped a run at a safe point (checkpoint saved); rerunning resumes.
    A BaseException, so no ``except Exception`` records it as a failure."""


class MissingFileError(DataError):
    """A file the user must provide (weights, raw dataset) is not on disk."""

    def __init__(self, path: Path | str, expected: str, published: str = "") -> None:
        where = f"; it is published at {published}" if published else ""
        super().__init__(f"{path}: not found (expected {expected}{where})")
        self.path = Path(path)


def field_error(
    cls: type[BenchmarkError], source: Path | str, field: str, value: object, problem: str
) -> BenchmarkError:
    """Build the one-line message format used everywhere: `file: field=value: problem`."""
    return cls(f"{source}: {field}={value!r}: {problem}")
