"""The Optuna side of a study: storage, workers, sampling, what a trial and a study store, the
race on fresh seed sets and the selected trial. A parameter set's evaluation itself is
:mod:`optimize.evaluation`.

* :mod:`~optimize.study.storage` — storages, one-line storage errors, recovery of dead workers'
  trials, the watch on a SQLite study file;
* :mod:`~optimize.study.runner` — :func:`open_study` (resume checks), :func:`run_worker` and the
  objective that stores each trial's record;
* :mod:`~optimize.study.cluster` — the workers as long-running tasks on a Dask cluster
  (``run --cluster``), stopped like worker processes, and the robustness step's executor there;
* :mod:`~optimize.study.sampling` — each worker's sampler, seeded by the number of its first
  trial;
* :mod:`~optimize.study.supervisor` — a study run on this machine: worker processes (or cluster
  tasks) started, watched, stopped on a signal, each given its threads and GPU, a progress bar,
  then the robustness step;
* :mod:`~optimize.study.pool` — processes that stop with their parent;
* :mod:`~optimize.study.fingerprint` — what a study is bound to and what a resume may change;
* :mod:`~optimize.study.records` — the typed, versioned records a trial and a study store (the
  holdout records one key per trial);
* :mod:`~optimize.study.robustness` / :mod:`~optimize.study.seednoise` — the race of the best
  trials on fresh seed sets and what it says about seed noise; :mod:`~optimize.study.racing` — the
  race's pure logic (ranking, tests, elimination); :mod:`~optimize.study.tail` — the race's first
  evaluations on the cores the search's last trials leave idle;
* :mod:`~optimize.study.selection` — the trial report, holdout and export use by default;
* :mod:`~optimize.study.holdout` — a trial's holdout, scored once and stored in the study.
"""

from base.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "DEFAULT_STORAGE": "optimize.study.storage",
        "make_storage": "optimize.study.storage",
        "load_existing_study": "optimize.study.storage",
        "recover_stale_trials": "optimize.study.storage",
        "StorageError": "optimize.study.storage",
        "StorageWatch": "optimize.study.storage",
        "FirstTrialSeeded": "optimize.study.sampling",
        "evaluation_pool": "optimize.study.pool",
        "open_study": "optimize.study.runner",
        "run_worker": "optimize.study.runner",
        "RunRequest": "optimize.study.supervisor",
        "run_study": "optimize.study.supervisor",
        "visible_gpus": "optimize.study.supervisor",
        "prepare_study_data": "optimize.study.runner",
        "TrialRecord": "optimize.study.records",
        "StudyRecord": "optimize.study.records",
        "study_config": "optimize.study.records",
        "run_robustness": "optimize.study.robustness",
        "read_noise": "optimize.study.seednoise",
        "RaceRecord": "optimize.study.seednoise",
        "Race": "optimize.study.racing",
        "run_race": "optimize.study.racing",
        "SeedNoise": "optimize.study.seednoise",
        "select_trial": "optimize.study.selection",
        "evaluate_holdout": "optimize.study.holdout",
        "stored_holdout": "optimize.study.holdout",
    },
)
