"""The report wing: typed results as sections (tables, notes, figures) and as Markdown and HTML.

``sections`` is shared with the terminal; ``figures`` draws with matplotlib on demand; ``document``
renders the two templates. Imports ``core``, ``results`` and ``io``.
"""
