"""What a study searches and what it maximises.

* :mod:`~optimize.search.space` — the search space YAML (:func:`load_space`, :class:`SearchSpace`)
  and one trial's resolved parameters (:class:`TrialParams`);
* :mod:`~optimize.search.objectives` — objective plug-ins, built-in or loaded by name from the
  run config's ``study.objectives_path`` (:func:`get_objective`).
"""

from base.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "SearchSpace": "optimize.search.space",
        "TrialParams": "optimize.search.space",
        "load_space": "optimize.search.space",
        "parse_space": "optimize.search.space",
        "SearchSpaceError": "optimize.search.space",
        "Objective": "optimize.search.objectives.base",
        "get_objective": "optimize.search.objectives",
        "available_objectives": "optimize.search.objectives",
    },
)
