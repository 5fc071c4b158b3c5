"""The one home of the rules for a table cell: is it missing, is it blank, what integer is it.

* ``is_missing``: None, NaN, pandas' NA or NaT. An absent value, never read as 0 or Safe.
* ``is_blank``: missing, or text that is only white space (an empty CSV cell, a blank id).
* ``as_int``: the integer a cell or a grader's answer holds (``2``, ``2.0``, ``"2"``), or None;
  booleans are never integers.
* ``not_label_cell``: the strict rule for *input* label cells (an integer or digit text; no
  ``1.0``, no ``true``), shared by the pandas validator (:mod:`harness.io.pairs`) and the
  streaming one (:mod:`harness.io.records`), with ``label_problem`` saying what was found.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any


def is_missing(value: Any) -> bool:
    """True for None, NaN, pandas' NA and NaT.

    >>> [is_missing(v) for v in (None, float("nan"), 0, "", "x")]
    [True, True, False, False, False]
    """
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, (str, int)):
        return False
    try:
        return bool(value != value)  # NaN-like values compare unequal; pd.NA raises
    except (TypeError, ValueError):
        return True


def is_blank(value: Any) -> bool:
    """Missing, or text of white space only.

    >>> is_blank("  "), is_blank("a"), is_blank(None)
    (True, False, True)
    """
    return is_missing(value) or (isinstance(value, str) and not value.strip())


def as_int(value: Any) -> int | None:
    """The integer ``value`` holds, or None (booleans and non-integral numbers are not integers).

    >>> [as_int(v) for v in (2, 2.0, "2", " -3 ", "2.0", 2.5, True, "x", "\u0661")]
    [2, 2, 2, -3, 2, None, None, None, None]
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalar
        return as_int(value.item())
    if isinstance(value, str):
        text = value.strip()
        if not text.isascii():  # "١" or "²" are digits to str.isdigit, never labels
            return None
        if text.lstrip("-").isdigit():
            return int(text)
        try:
            number = float(text)
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
    return None


def as_number(value: Any) -> int | float | None:
    """The number ``value`` holds (an integer where it is one), or None.

    >>> [as_number(v) for v in (2, "2.0", " 1.5 ", 2.5, True, "x", "nan", float("inf"))]
    [2, 2, 1.5, 2.5, None, None, None, None]
    """
    whole = as_int(value)
    if whole is not None:
        return whole
    if isinstance(value, bool) or value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalar
        value = value.item()
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


_DIGITS = re.compile(r"\s*-?[0-9]+(?:\.0*)?\s*")


def not_label_cell(value: Any) -> bool:
    """The one type rule for label cells held as objects (JSONL, CSV): an integer, a whole number
    written as a float (``1.0``, ``"1.0"``: what pandas writes for an integer column with a missing
    cell), or text of digits. ``True``, ``1.5`` and ``"1.5"`` are not labels.

    >>> [not_label_cell(v) for v in (2, "2", " 3 ", 2.0, "2.0", 2.5, "1.5", True, float("nan"))]
    [False, False, False, False, False, True, True, True, False]
    """
    if value is None or isinstance(value, bool):
        return value is not None
    if isinstance(value, str):
        return _DIGITS.fullmatch(value) is None
    if isinstance(value, numbers.Integral):
        return False
    if isinstance(value, float):
        return not (value != value or value.is_integer())  # NaN is a missing cell; 1.0 is the label 1
    return True


def label_problem(value: Any, number: int | None, allowed: range) -> str:
    """What is wrong with a label cell (``number`` is None when it is not an integer at all)."""
    low, high = allowed.start, allowed.stop - 1
    what = f"label {value!r} is not an integer" if number is None else f"label {number} is outside {low}-{high}"
    return f"{what}; expected an integer {low}-{high} or an empty cell for unknown"


def kind_of(value: Any) -> str:
    """A cell's kind in words, for messages (``a list``, ``a boolean`` …)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, float):
        return "a floating-point number"
    return f"a {type(value).__name__}"
