"""The core wing: what every other wing stands on, importing nothing of harness.

``errors`` (the one exception tree), ``constants``, ``cells`` (the rules for a table cell),
``redaction`` (secrets never leave the process) and ``atomic`` (writes no reader sees half of).
"""
