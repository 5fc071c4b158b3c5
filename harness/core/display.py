"""Text from data and endpoints made safe to show: no control characters, no terminal escape sequences.

Model names, error messages from an endpoint, file contents: any of them may hold an ESC that starts
a terminal sequence (a hyperlink, a title change), a carriage return that overwrites a line, or a
bell. :func:`printable` keeps line breaks and tabs and drops every other C0 and C1 control.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """``text`` as a string without control characters (line breaks and tabs kept).

    >>> printable("a\\x1b]8;;http://x\\x07b\\rc\\n\\td")
    'a]8;;http://xbc\\n\\td'
    """
    return _CONTROL.sub("", str(text))
