"""The workflows wing: several wings in one job.

The exemplar search (``shot_search``: grade candidates on dev, judge on test) and ``harness demo``.
"""
