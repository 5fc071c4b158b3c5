"""What every ``harness`` command shares: the error edge, common options, small parsers.

The error edge turns a :class:`~harness.core.errors.HarnessError` into one paragraph on stderr and
exit code 2 (bad input) or 1, with every known secret redacted; tracebacks only with
``HARNESS_DEBUG=1``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Optional

import typer

from ..core.bounds import MAX_N_BOOT


@contextmanager
def errors() -> Iterator[None]:
    """Turn harness errors into a one-paragraph message and exit code 2 (bad input) or 1."""
    from ..core.errors import HarnessError

    try:
        yield
    except HarnessError as exc:
        if os.environ.get("HARNESS_DEBUG") == "1":
            raise
        from ..core.display import printable

        typer.echo(f"error: {printable(redactor()(as_flags(exc)))}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted; re-run the same command to resume", err=True)
        raise typer.Exit(130) from None
    except OSError as exc:  # a full disk, a read-only file system, a name too long: a sentence, exit 2
        if os.environ.get("HARNESS_DEBUG") == "1" or exc.errno is None:
            raise
        from ..core.display import printable
        from ..core.errors import file_system_error

        typer.echo(f"error: {printable(redactor()(str(file_system_error(exc))))}", err=True)
        raise typer.Exit(2) from None


#: Library parameter -> the CLI flag that sets it, where the flag is not the parameter with dashes.
FLAGS = {"timeout_s": "--timeout", "deadline_s": "--deadline", "targets": "--target", "retry_statuses": "--retry",
         "model_names": "--model-name", "mapping": "--map", "config_path": "--config", "out_dir": "--out",
         "run_dir": "--out"}
_NAMED = re.compile(r"`([a-z][a-z_]*)`")


def flag_of(param: str) -> str:
    """The CLI flag that sets a library parameter (``deadline_s`` -> ``--deadline``)."""
    return FLAGS.get(param, "--" + param.replace("_", "-"))


def as_flags(exc: Exception) -> str:
    r"""The error's message as the CLI says it: the library names parameters (``timeout_s=0: …``, or
    in backticks, ``\`cluster\` 'x': …``); a command-line user reads the flags that set them."""
    text = str(exc)
    param = getattr(exc, "param", None)
    if param and text.startswith(f"{param}="):
        text = f"{flag_of(param)} {text[len(param) + 1:]}"
    return _NAMED.sub(lambda match: flag_of(match.group(1)), text)


def redactor() -> Any:
    """Every secret this process knows: secret-looking environment variables and --api-key."""
    import sys

    from ..core.redaction import Redactor

    argv = sys.argv
    flagged = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--api-key"]
    flagged += [arg.split("=", 1)[1] for arg in argv if arg.startswith("--api-key=")]
    return Redactor.of(*flagged)


def deprecated(value: Any, old: str, new: str) -> Any:
    """A value given with an old spelling of a flag: still honoured this release, with a line on stderr saying so."""
    if value is not None and value is not False:
        typer.echo(f"warning: {old} is deprecated and will be removed in the next release; use {new}", err=True)
    return value


MapOpt = Annotated[Optional[str], typer.Option(
    "--map", help="Column mapping canonical=source, e.g. id=uid,prompt=question.")]
ClusterOpt = Annotated[Optional[str], typer.Option(
    help="Column naming the unit of analysis (default prompt_id, else the prompt text); 'none' treats rows as "
         "independent.")]
NBootOpt = Annotated[int, typer.Option(
    min=0, max=MAX_N_BOOT, help=f"Cluster-bootstrap resamples for CIs (0 to skip; at most {MAX_N_BOOT:,}).")]
LimitOpt = Annotated[Optional[int], typer.Option(help="Use only the first N rows of the table.")]
SampleOpt = Annotated[Optional[int], typer.Option(help="Use N rows drawn at random (see --sample-seed).")]
SampleSeedOpt = Annotated[int, typer.Option(help="Seed of --sample.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print only the JSON result on stdout.")]
ConcurrencyOpt = Annotated[Optional[int], typer.Option(help="Requests in flight at most.")]
CacheDirOpt = Annotated[Optional[str], typer.Option(help="Completion cache folder.")]


def split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


def mapping_of(spec: str | None) -> dict[str, str]:
    from ..io.pairs import parse_mapping

    return parse_mapping(spec)
