"""The cli wing: the ``harness`` command line, the only place that prints or exits.

``app`` (the typer app), the commands by what they do (``grading_commands``,
``analysis_commands``, ``data_commands``), the shared error edge and options (``common``) and
terminal rendering (``console``).
"""
