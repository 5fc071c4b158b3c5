"""The grading wing: from a pairs table to labels in a run folder, through any OpenAI-compatible endpoint.

Settings and the endpoint (``config``, ``endpoint``), the job (``jobs``, ``templates``, ``shots``),
sending (``client``, ``answers``, ``limiter``, ``replicas``, ``cache``), judging (``parsing``),
the session (``grade``, ``session``, ``grader``, ``runfolder``), the Batch API (``batch_api``) and
the bill (``costs``). Imports ``core``, ``results`` and ``io``.
"""
