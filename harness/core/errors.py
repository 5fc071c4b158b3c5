r"""The one exception tree of harness.

Every error the library raises on purpose is a :class:`HarnessError`. The CLI turns
``UsageError`` subclasses (bad input the user can fix) into exit code 2 and the rest into
exit code 1, printing the message without a traceback unless ``HARNESS_DEBUG=1``.

Messages name the library's *parameters*, never CLI flags: ``timeout_s=0: …`` (with
``ConfigError(param=)``) or a parameter in backticks, ``\`cluster\` 'x': no such column``. The
CLI shows each as the flag that sets it (``--timeout 0``, ``--cluster 'x'``), so a Python user
and a command-line user each read the name they typed.
"""

from __future__ import annotations

from typing import Any


class HarnessError(Exception):
    """Base class of every error harness raises deliberately."""

    exit_code = 1


class UsageError(HarnessError):
    """Bad input that the user can fix: a file, a flag or a template. Exit code 2."""

    exit_code = 2


class DataError(UsageError):
    """An input table cannot be read or does not follow the pairs-table contract.

    The message names the file, the line (or row) and the column, and what was expected.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: str | None = None,
        row: int | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.row = row
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        elif row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class TemplateError(UsageError):
    """A grader template or shot file cannot be loaded or rendered."""


class ConfigError(UsageError):
    """A flag, environment variable or configuration value is invalid or missing.

    Raised by a library object, it names the *parameter* (``concurrency=0: …``) and sets
    ``param``; the CLI shows the flag that sets it instead (``--concurrency 0: …``).
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        self.param = param
        super().__init__(message)


class RunError(UsageError):
    """A run folder is missing, unreadable, or holds a different run than requested."""


class FolderBusyError(RunError):
    """A run folder is being graded by another process or call: nothing of it is touched."""


class ResultError(RunError):
    """A result file (calibration.json, analysis.json, ...) lacks a field or holds a wrong type."""


class GraderError(HarnessError):
    """The grader endpoint failed in a way that stops the whole job (e.g. 401, 404)."""


class ItemsFailedError(HarnessError):
    """A job finished but left items ``failed`` (a study's grade step): not a success. Exit code 3, as ``grade``."""

    exit_code = 3


#: What a file-system fault means, by errno name, and what to do about it.
_FAULTS = {
    "ENOSPC": "no space left on the device; free some space and run the command again (what was written is whole, "
              "a run resumes)",
    "EDQUOT": "the disk quota is used up; free some space and run the command again",
    "EROFS": "the file system is read-only; choose a folder on a writable disk",
    "EACCES": "permission denied; choose a folder you can write to, or fix its permissions",
    "EPERM": "operation not permitted; choose a folder you can write to",
    "ENAMETOOLONG": "the name is too long (most file systems take at most 255 bytes a name); choose a shorter name",
    "EISDIR": "is a folder; expected a file",
    "ENOTDIR": "a part of the path is a file, not a folder",
    "ENOENT": "no such file or folder",
    "EEXIST": "already exists",
    "EIO": "the device reported an input/output error",
    "EMFILE": "too many open files; raise the limit (ulimit -n) or lower the concurrency",
}


class FileSystemError(UsageError):
    """A file could not be read or written: the path and the cause, as one sentence (never a traceback)."""


def file_system_error(exc: OSError) -> FileSystemError:
    """An ``OSError`` from the file system as a sentence naming the path and the cause."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    cause = _FAULTS.get(name) or (exc.strerror or str(exc))
    where = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    return FileSystemError(f"{where}: {cause}" if where else cause)


#: What a pydantic error type expected, as words (``{le}`` and the like are filled from the error's context).
_EXPECTED = {
    "less_than_equal": "expected at most {le}",
    "greater_than_equal": "expected at least {ge}",
    "less_than": "expected less than {lt}",
    "greater_than": "expected more than {gt}",
    "literal_error": "expected one of {expected}",
    "extra_forbidden": "unknown key",
    "missing": "required",
    "finite_number": "expected a finite number",
    "string_too_short": "expected a non-empty text",
    "too_short": "expected at least {min_length} entries",
    "string_pattern_mismatch": "expected a name matching {pattern}",
    "list_type": "expected a list (in a study file a TOML array, e.g. [\"a\", \"b\"])",
    "int_type": "expected a whole number",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "string_type": "expected a text (in quotes)",
}


def expected(error: Any) -> str:
    """A pydantic validation error as what was expected ("expected at most 100000")."""
    context = error.get("ctx") or {}
    if error["type"] == "value_error":  # a check across fields (model_validator): its own sentence
        return str(error["msg"]).removeprefix("Value error, ")
    template = _EXPECTED.get(error["type"])
    try:
        return template.format(**context) if template else str(error["msg"])
    except (KeyError, IndexError):
        return str(error["msg"])
