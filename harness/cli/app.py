"""The ``harness`` command line: parse options, call one library function, render the result.

The commands live beside this module by what they do (grading, analysis, data); library modules
are imported inside each command, so ``harness --help`` and every command load only what they use.
"""

from __future__ import annotations

from typing import Annotated

import typer

from . import analysis_commands, data_commands, grading_commands, planning_commands, study_commands

app = typer.Typer(
    help="Grade LLM prompts and responses with LLM graders, and measure how far to trust them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help text is text: "[prices.MODEL]" is shown, not read as markup
)


def _version(value: bool) -> None:
    if value:
        from ..core.constants import VERSION as __version__

        typer.echo(f"harness {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Grade LLM prompts and responses with LLM graders, and measure how far to trust them."""


grading_commands.register(app)
study_commands.register(app)
analysis_commands.register(app)
data_commands.register(app)
planning_commands.register(app)


def main() -> None:
    """Console-script entry point. Ctrl-C anywhere (while importing, parsing or between steps) exits 130, never by the
    signal itself (which a shell reads as -2)."""
    import sys

    try:
        app(prog_name="harness")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; re-run the same command to resume\n")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
