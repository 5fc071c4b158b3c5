"""The serve wing: ``harness serve``, the embedded OpenAI-compatible endpoint tests and the demo use.

The HTTP app (``server``, ``wire``), the Batch API routes (``batches``), reading a chat request
(``chat``), the in-context graders (``graders``) and running it all (``runner``). Imports
``core`` and ``io``; never the grading client it is tested against.
"""
