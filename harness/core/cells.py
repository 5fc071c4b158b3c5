"""The one home of the rules for a table cell: is it missing, is it blank, what integer is it.

* ``is_missing``: None, NaN, pandas' NA or NaT. An absent value, never read as 0 or Safe.
* ``is_blank``: missing, or text that is only white space (an empty CSV cell, a blank id).
* ``as_int``: the integer a cell or a grader's answer holds (``2``, ``2.0``, ``"2"``), or None;
  booleans are never integers. The strict rule for *input* labels (no ``1.0``) lives in
  :func:`harness.io.pairs.validate_pairs`, which uses these to say what it found.
"""

from __future__ import annotations

import math
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

    >>> [as_int(v) for v in (2, 2.0, "2", " -3 ", "2.0", 2.5, True, "x")]
    [2, 2, 2, -3, 2, None, None, None]
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
        if text.lstrip("-").isdigit():
            return int(text)
        try:
            number = float(text)
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
    return None
