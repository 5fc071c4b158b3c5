"""A study: one file declaring a whole evaluation (grade → shot search → calibrate → … → report), run resumably.

``file`` declares its tables as models, ``reading`` reads a study file strictly, ``runner`` fingerprints and records
each step, ``steps`` and ``analyses`` make the grading and analysis steps, ``run`` runs them in order.
"""
