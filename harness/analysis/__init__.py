"""The analysis wing: what the labels say, with intervals and tests by prompt cluster.

The statistics core (``stats``), agreement with reference labels (``agreement``, ``calibration``),
graders side by side (``comparison``), the paired transition analysis (``transitions``,
``group_tests``, ``correction``) and grader injection (``injection``). Imports ``core``,
``results`` and ``io``; never sends a request.
"""
