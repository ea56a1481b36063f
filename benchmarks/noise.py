"""Measurement: how much of a trial's value is the training seed, with 1 model and with K members.

``python -m benchmarks.noise --storage URL --study-name NAME [--trial N] [--ensemble 1,4]
[--seed-sets 5] [--workers 2]`` takes a finished study's selected trial (or ``--trial``), and
evaluates its parameters on the study's data with ``training.ensemble_size`` replaced by each
given K, on seed sets ``1..M`` (fresh seeds: none of them is the trial's own set 0). It prints one
JSON object per K: the values, their mean and sample std, and the IQR of the values across the
study's complete trials for scale. Not a timing: the figures are objective values.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import numpy as np

from optimize.config import RunConfig, parse_config
from optimize.evaluation.inputs import StudyData
from optimize.evaluation.trial import evaluate
from optimize.search.space import TrialParams


def _one(config_dict: dict[str, Any], source: str, params: dict[str, Any], seed_set: int) -> float:
    """The objective's first value of ``params`` on seed set ``seed_set``."""
    config = parse_config(config_dict, source)
    objective = config.study.resolved_objective
    trial = TrialParams.from_dict(params)
    return float(evaluate(StudyData.load(config), trial, objective, seed_set=seed_set).values[0])


def seed_spread(
    config: RunConfig, params: dict[str, Any], ensemble_size: int, seed_sets: int, workers: int = 1
) -> dict[str, Any]:
    """The values of ``params`` on seed sets 1..``seed_sets`` with ``ensemble_size`` members."""
    config = dataclasses.replace(
        config, training=dataclasses.replace(config.training, ensemble_size=ensemble_size)
    )
    args = [(config.to_dict(), config.source, params, m) for m in range(1, seed_sets + 1)]
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            values = list(pool.map(_one, *zip(*args, strict=True)))
    else:
        values = [_one(*a) for a in args]
    return {
        "ensemble_size": ensemble_size,
        "values": values,
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
    }


def main(argv: list[str] | None = None) -> int:
    from optimize.study.records import study_config
    from optimize.study.seednoise import value_iqr
    from optimize.study.selection import select_trial
    from optimize.study.storage import load_existing_study

    p = argparse.ArgumentParser(
        prog="python -m benchmarks.noise", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--storage", default="sqlite:///studies.db")
    p.add_argument("--study-name", default="default")
    p.add_argument("--trial", type=int, default=None)
    p.add_argument("--ensemble", default="1,4", help="comma-separated K values (default 1,4)")
    p.add_argument("--seed-sets", type=int, default=5)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    study = load_existing_study(args.storage, args.study_name)
    trial = select_trial(study, args.trial)
    config = study_config(study)
    iqr = value_iqr(study)
    for k in (int(x) for x in args.ensemble.split(",")):
        row = seed_spread(
            config, trial.user_attrs["resolved_params"], k, args.seed_sets, args.workers
        )
        row.update(
            study=args.study_name,
            trial=trial.number,
            recorded=trial.value,
            recorded_ensemble_size=config.training.ensemble_size,
            value_iqr=iqr,
        )
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
