"""What a study is bound to, and what a resumed study may change.

A study stores its fingerprint (:func:`study_fingerprint`: the run config and the search space)
when it is created; every worker that joins it compares its own with
:func:`fingerprint_differences`, which ignores the keys that cannot change a trial's result
(:data:`RESUMABLE_KEYS`). :func:`resume_seed` seeds the sampler of a worker joining a study that
already holds trials, so a rerun does not repeat the start-up draws of the first.
:func:`optimize.study.runner.open_study` applies all three.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from optimize.config import RunConfig
from optimize.search.space import SearchSpace

RESUMABLE_KEYS = frozenset(
    {
        "study.n_trials",
        "study.timeout",
        "study.heartbeat_interval",
        "study.grace_period",
        "study.max_retry",
        "study.robustness_top",
        "study.robustness_budget",
        "study.robustness_seed_sets",
        "training.accelerator",
        "training.threads_per_worker",
        "training.cache_dir",
    }
)
"""Run-config keys (``section.key``) that cannot change a trial's result: a study resumes with other
values."""


def study_fingerprint(config: RunConfig, space: SearchSpace) -> dict[str, Any]:
    """What a study is bound to: stored once, checked on every resume."""
    return {
        "config": config.to_dict(),
        "space": space.to_dict(),
    }


def resume_seed(seed: int, n_trials: int) -> int:
    """The sampler seed of a worker (seed ``seed``) joining a study that already holds
    ``n_trials``."""
    return int(np.random.SeedSequence([seed, n_trials]).generate_state(1)[0])


_ABSENT = "<absent>"


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """``value``'s leaves keyed by their dotted path (an empty dict is a leaf of its own)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _config_defaults() -> dict[str, Any]:
    """Every run-config key at its default (flat, as JSON reads it back)."""
    return _flat(_normalise(RunConfig().to_dict()))


def fingerprint_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``"config walkforward.test_days: stored 7, now 10"`` for every key that differs and matters.

    Keys of :data:`RESUMABLE_KEYS` are ignored. A run-config key the stored fingerprint lacks (a
    key added after the study was made) is no difference while it holds its default: a new key's
    default is what the code did before it existed.
    """
    out = []
    defaults = _config_defaults()
    for part in ("config", "space"):
        old, new = _flat(_normalise(stored.get(part, {}))), _flat(_normalise(current.get(part, {})))
        for key in sorted(set(old) | set(new)):
            if part == "config" and key in RESUMABLE_KEYS:
                continue
            if (
                part == "config"
                and key not in old
                and key in defaults
                and new[key] == defaults[key]
            ):
                continue
            a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
            if a != b:
                out.append(f"{part} {key}: stored {a!r}, now {b!r}")
    return out


def _normalise(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples as lists, other objects as strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


__all__ = ["RESUMABLE_KEYS", "fingerprint_differences", "resume_seed", "study_fingerprint"]
