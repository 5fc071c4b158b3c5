"""The exception tree: library errors name parameters, the CLI shows them as flags."""

from __future__ import annotations

import pytest

from harness.core.errors import ConfigError
from harness.grading.endpoint import EndpointConfig


def test_library_errors_name_parameters_and_the_cli_names_flags() -> None:
    from harness.cli.common import as_flags
    from harness.grading.grade import GradeSpec

    with pytest.raises(ConfigError) as caught:
        EndpointConfig(base_url="http://h/v1", concurrency=0)
    assert str(caught.value).startswith("concurrency=0: expected at least 1") and "--" not in str(caught.value)
    assert as_flags(caught.value).startswith("--concurrency 0: expected")
    with pytest.raises(ConfigError) as caught:
        EndpointConfig(base_url="http://h/v1", timeout_s=-1)
    assert as_flags(caught.value).startswith("--timeout -1: expected more than 0")
    with pytest.raises(ConfigError) as caught:
        GradeSpec(targets=("title",))
    assert str(caught.value).startswith("targets='title'") and as_flags(caught.value).startswith("--target 'title'")
