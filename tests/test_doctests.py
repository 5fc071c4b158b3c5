"""The examples in the docstrings of the core modules run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["analysis.stats", "analysis.agreement", "io.clusters", "grading.parsing", "grading.templates", "core.constants", "core.cells", "core.atomic"])
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"harness.{name}")
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0
