"""The one rule that gives every trained model its seed.

A model's seed belongs to what it is trained on, never to who trains it: it is derived from the
study's seed, the pair, the open time of the last candle of its training window and the index of
the ensemble member. Nothing about the worker, the trial number or the process enters, so the same
parameters on the same data train the same weights (CPU) in any trial, any worker, and inside
freqtrade's FreqAI model, which calls this same function.

Fresh seed sets (the study's robustness step) are simply further members: seed set ``m`` of an
ensemble of ``K`` uses members ``m*K .. m*K + K - 1``; set 0 is what the trial itself trained.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd


def model_seed(study_seed: int, pair: str, train_end: Any, member: int = 0) -> int:
    """Seed of one model, in ``[0, 2**32)``.

    Args:
        study_seed: the study's seed (``study.seed`` of the run config; ``lstm_optuna.seed`` of an
            export).
        pair: the pair the model trades, e.g. ``"BTC/USDT"``.
        train_end: open time of the last candle of the training window actually fitted (after a
            purge gap is dropped); anything :class:`pandas.Timestamp` accepts, naive means UTC.
        member: index of the ensemble member (0-based); seed set ``m`` of ``K`` members uses
            ``m*K + k``.

    Raises:
        ValueError: a negative member or study seed, or a ``train_end`` that is not a date.
    """
    if isinstance(member, bool) or int(member) != member or member < 0:
        raise ValueError(f"member must be an integer >= 0, but got {member=!r}.")
    if isinstance(study_seed, bool) or int(study_seed) != study_seed or study_seed < 0:
        raise ValueError(f"study_seed must be an integer >= 0, but got {study_seed=!r}.")
    stamp = pd.Timestamp(train_end)
    if pd.isna(stamp):
        raise ValueError(f"train_end must be a date, but got {train_end=!r}.")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    key = f"{int(study_seed)}|{pair}|{stamp.value}|{int(member)}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "little")


NOISE_STREAM = 0x6E6F6973
"""Second entropy word of :func:`noise_generator`: the noise stream of a seed is not the stream
torch draws the member's weights and batches from."""


def noise_generator(seed: int) -> np.random.Generator:
    """The numpy generator of a member's training noise (FreqAI's ``noise_standard_deviation``).

    Drawn from the member's own seed (:func:`model_seed`), so a fit's noise is the same in the
    study, the holdout and the FreqAI model, and every member and seed set has its own.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), NOISE_STREAM]))


def member_range(ensemble_size: int, seed_set: int = 0) -> range:
    """The member indices of seed set ``seed_set`` for an ensemble of ``ensemble_size``."""
    if isinstance(ensemble_size, bool) or int(ensemble_size) != ensemble_size or ensemble_size < 1:
        raise ValueError(f"ensemble_size must be an integer >= 1, but got {ensemble_size=!r}.")
    if isinstance(seed_set, bool) or int(seed_set) != seed_set or seed_set < 0:
        raise ValueError(f"seed_set must be an integer >= 0, but got {seed_set=!r}.")
    return range(seed_set * ensemble_size, (seed_set + 1) * ensemble_size)
