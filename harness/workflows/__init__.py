"""The workflows wing: several wings in one job.

The exemplar search (``shot_search``: grade candidates on dev, judge on test), ``harness demo``, ``harness probe``
and the study (``study/``: a study file run as one resumable job).
"""
