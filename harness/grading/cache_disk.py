"""The completion cache's rows on disk: JSON data, never a pickle.

diskcache pickles what it stores, and unpickling runs code: a row replaced with a pickle would run it on the next
grade. :class:`DataDisk` stores an entry as JSON bytes (in the database, or a value file when large) and reads nothing
else: a row in another mode, a value file outside diskcache's own layout, bytes that are not JSON, or JSON that is not
an entry is refused (:class:`RefusedEntry`); the cache reads it as a miss and says so. A row an older harness wrote
(a pickled dict of plain data) is read as data by :func:`plain_data`, which walks the pickle's opcodes, builds dicts,
lists, strings and numbers, and refuses every other opcode: no class is looked up and nothing is called, so existing
caches keep answering and the cache stores each such answer again as JSON.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

if TYPE_CHECKING:
    import sqlite3

#: diskcache's row modes (``diskcache.core.MODE_*``): a value in the row, in a value file, or pickled.
MODE_RAW, MODE_BINARY, MODE_PICKLE = 1, 2, 4

#: Largest entry read or written (a completion is capped far below this by the response body cap).
MAX_ENTRY_BYTES = 16 * 2**20
#: The entry format: ``{"v": 1, "key": <request hash>, "completion": {...}}``.
ENTRY_VERSION = 1
#: Where diskcache puts a value file: two levels of hex folders, 28 hex digits, ``.val``.
_VALUE_FILE = re.compile(r"^[0-9a-f]{2}[/\\][0-9a-f]{2}[/\\][0-9a-f]{28}\.val$")


class RefusedEntry(ValueError):
    """A cache row that is not an entry harness wrote: a miss, never run."""


class Legacy(NamedTuple):
    """What an older harness stored: the completion itself, pickled (read as plain data)."""

    data: Any


def encode_entry(key: str, completion: dict[str, Any]) -> bytes:
    """The bytes stored for ``completion`` under ``key`` (the key inside too: a row copied under another key is
    seen)."""
    entry = {"v": ENTRY_VERSION, "key": key, "completion": completion}
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()


def decode_entry(blob: bytes, key: str) -> Any:
    """The completion stored in ``blob`` for ``key``; RefusedEntry when it is not an entry for that key."""
    try:
        entry = json.loads(blob)
    except (ValueError, RecursionError):
        raise RefusedEntry("not JSON") from None
    if not isinstance(entry, dict) or entry.get("v") != ENTRY_VERSION or "completion" not in entry:
        raise RefusedEntry("JSON that is not a cache entry")
    if entry.get("key") != key:
        raise RefusedEntry("an entry stored under another key")
    return entry["completion"]


def _value_file(directory: str, filename: Any) -> bytes:
    """A value file's bytes, when it lies where diskcache puts value files (never a path out of the folder, never
    a symbolic link, never more than :data:`MAX_ENTRY_BYTES`)."""
    if not isinstance(filename, str) or not _VALUE_FILE.match(filename):
        raise RefusedEntry("a value file outside the cache's own layout")
    descriptor = os.open(os.path.join(directory, filename), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(descriptor, "rb") as handle:
        blob = handle.read(MAX_ENTRY_BYTES + 1)
    if len(blob) > MAX_ENTRY_BYTES:
        raise RefusedEntry(f"a value over {MAX_ENTRY_BYTES:,} bytes")
    return blob


def read_row(directory: str, mode: Any, filename: Any, value: Any) -> bytes | Legacy:
    """A row's stored bytes (JSON), or an older harness's pickled entry read as plain data; RefusedEntry otherwise.
    A value file that has gone is an OSError (diskcache reads that as a miss: the row was being replaced)."""
    if mode == MODE_RAW and isinstance(value, (bytes, memoryview)):
        return bytes(value)
    if mode == MODE_BINARY and value is None:
        return _value_file(directory, filename)
    if mode == MODE_PICKLE:
        blob = bytes(value) if isinstance(value, (bytes, memoryview)) else _value_file(directory, filename)
        if len(blob) > MAX_ENTRY_BYTES:
            raise RefusedEntry(f"a value over {MAX_ENTRY_BYTES:,} bytes")
        return Legacy(plain_data(blob))
    raise RefusedEntry(f"a row of another kind (mode {mode!r})")


@lru_cache(maxsize=1)
def data_disk() -> type:
    """diskcache's ``Disk`` with JSON bytes in and out, string keys only, and no pickle read or written (made on first
    use, so importing this module does not import diskcache)."""
    import diskcache

    class DataDisk(diskcache.Disk):  # type: ignore[misc]
        def put(self, key: Any) -> Any:
            if type(key) is not str:
                raise TypeError("cache keys are request hashes (str)")
            return super().put(key)

        def get(self, key: Any, raw: bool) -> Any:
            if not raw:
                raise RefusedEntry("a key stored as a pickle")
            return super().get(key, raw)

        def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
            if type(value) is not bytes or read:
                raise TypeError("cache values are encoded entries (bytes)")
            return super().store(value, read, key)

        def fetch(self, mode: Any, filename: Any, value: Any, read: bool) -> bytes | Legacy:
            return read_row(self._directory, mode, filename, value)

        def remove(self, file_path: Any) -> None:
            if isinstance(file_path, str) and _VALUE_FILE.match(file_path):  # never a file a tampered row names
                super().remove(file_path)

    return DataDisk


def read_only_rows(directory: Path) -> sqlite3.Connection:
    """The cache's database opened for reading only (nothing written, not even a journal), for a cache this process
    may not write; sqlite3.DatabaseError when it is damaged, OperationalError when there is nothing to open."""
    import sqlite3

    uri = (directory / "cache.db").resolve().as_uri()
    # a database in write-ahead-log mode needs a shared-memory file, which a read-only folder may not hold: then the
    # file is read as it stands (nobody writes a cache whose folder nobody may write)
    for how in ("mode=ro", "immutable=1"):
        connection = sqlite3.connect(f"{uri}?{how}", uri=True, check_same_thread=False)
        try:
            connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return connection
        except sqlite3.OperationalError:
            connection.close()
            if how == "immutable=1":
                raise
        except BaseException:
            connection.close()
            raise
    raise AssertionError("unreachable")


def row_of(connection: sqlite3.Connection, directory: Path, key: str) -> bytes | Legacy | None:
    """One key's stored row read through :func:`read_only_rows`'s connection (None: not there)."""
    import sqlite3

    try:
        found = connection.execute("SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1 AND "
                                   "(expire_time IS NULL OR expire_time > strftime('%s', 'now'))", (key,)).fetchone()
    except sqlite3.OperationalError:  # no Cache table: an empty cache
        return None
    return None if found is None else read_row(str(directory), *found)


#: Pickle opcodes that only push or assemble plain data (protocols 2 to 5, as an older diskcache wrote them).
_PUSH = {"BININT", "BININT1", "BININT2", "LONG1", "LONG4", "BINFLOAT", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"}
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_SKIP = {"PROTO", "FRAME", "STOP"}


def plain_data(blob: bytes) -> Any:
    """The value of a pickle that holds only dicts, lists, tuples (as lists), texts, numbers, booleans and None,
    read by walking its opcodes; RefusedEntry for anything else (a class, a call, a reference to a container, more
    than :data:`MAX_ENTRY_BYTES` of expanded strings). Nothing is looked up, called or recursed into.

    >>> import pickle
    >>> plain_data(pickle.dumps({"content": "ok", "n": [1, 2.5, None]}, protocol=5))
    {'content': 'ok', 'n': [1, 2.5, None]}
    >>> plain_data(pickle.dumps(len))
    Traceback (most recent call last):
    ...
    harness.grading.cache_disk.RefusedEntry: a pickle that is not plain data (STACK_GLOBAL)
    """
    import pickletools

    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}
    budget = MAX_ENTRY_BYTES
    try:
        for opcode, read, _ in pickletools.genops(blob):
            name, arg = opcode.name, cast(Any, read)
            if name in _PUSH:
                budget -= len(arg) if isinstance(arg, str) else 8
                stack.append(arg)
            elif name in _CONSTANTS:
                stack.append(_CONSTANTS[name])
            elif name in ("EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE"):
                stack.append({} if name == "EMPTY_DICT" else [])
            elif name == "MARK":
                marks.append(len(stack))
            elif name in ("SETITEM", "SETITEMS", "APPEND", "APPENDS", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3"):
                _assemble(name, stack, marks)
            elif name in ("MEMOIZE", "BINPUT", "LONG_BINPUT"):
                memo[len(memo) if name == "MEMOIZE" else int(arg)] = stack[-1]
            elif name in ("BINGET", "LONG_BINGET"):
                shared = memo[int(arg)]
                if isinstance(shared, (dict, list)):  # a shared or circular container: not what a completion holds
                    raise RefusedEntry("a pickle that is not plain data (a shared container)")
                budget -= len(shared) if isinstance(shared, str) else 8
                stack.append(shared)
            elif name not in _SKIP:
                raise RefusedEntry(f"a pickle that is not plain data ({name})")
            budget -= 1
            if budget < 0:
                raise RefusedEntry(f"a pickle over {MAX_ENTRY_BYTES:,} bytes of data")
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        if isinstance(exc, RefusedEntry):
            raise
        raise RefusedEntry(f"an unreadable pickle ({type(exc).__name__})") from None
    if len(stack) != 1 or marks:
        raise RefusedEntry("an unreadable pickle (unbalanced)")
    return stack[0]


def _assemble(name: str, stack: list[Any], marks: list[int]) -> None:
    """Apply one of the pickle opcodes that fill a dict or a list or make a tuple (as a list)."""
    if name.startswith("TUPLE"):
        size = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}.get(name)
        start = marks.pop() if size is None else len(stack) - size
        if not 0 <= start <= len(stack):
            raise IndexError("tuple past the bottom of the stack")
        items = stack[start:]
        del stack[start:]
        stack.append(items)
        return
    start = marks.pop() if name in ("SETITEMS", "APPENDS") else len(stack) - (2 if name == "SETITEM" else 1)
    if not 1 <= start <= len(stack):
        raise IndexError("items past the bottom of the stack")
    items = stack[start:]
    del stack[start:]
    target = stack[-1]
    if name.startswith("SET"):
        if not isinstance(target, dict) or len(items) % 2:
            raise TypeError("items set on something that is not a dict")
        for index in range(0, len(items), 2):
            if not isinstance(items[index], str):
                raise TypeError("a dict key that is not a string")
            target[items[index]] = items[index + 1]
    else:
        if not isinstance(target, list):
            raise TypeError("items appended to something that is not a list")
        target.extend(items)
