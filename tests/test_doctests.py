"""Every example in every docstring of harness runs and holds (none is skipped)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import harness

MODULES = sorted(m.name for m in pkgutil.walk_packages(harness.__path__, "harness.") if m.name != "harness.__main__")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_the_examples_are_found() -> None:
    attempted = {name: doctest.testmod(importlib.import_module(name)).attempted for name in MODULES}
    assert sum(attempted.values()) >= 30 and sum(1 for n in attempted.values() if n) >= 10, attempted
