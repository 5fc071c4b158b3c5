"""The io wing: tables and run folders as files.

Reading, validating and writing pairs tables (``pairs``, ``readers``, ``records``), the public
data sets' importers, the unit of analysis (``clusters``), the bundled sample, and the run-folder
file format (``runs``). Imports ``core`` and ``results``.
"""
