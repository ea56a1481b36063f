"""The project's floor: what every package may use and that imports nothing of the project.

* :mod:`base.errors` — the one hierarchy of errors raised on bad input or a failed precondition
  (:class:`~base.errors.ProjectError` and its kinds).
"""
