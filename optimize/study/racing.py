"""Racing (F-race): choose the best of a few noisy candidates, spending evaluations on the ones
still in contention.

Pure: numbers in, decisions out (numpy and scipy only; no Optuna, no I/O), so the race can be
tested on synthetic values and replayed from stored ones.

A race starts from ``candidates`` (trial numbers, best recorded value first) and runs in rounds.
Round ``r`` evaluates every candidate still in the race (a *survivor*) on block ``r`` (in the study:
fresh seed set ``r``, the same seeds for every candidate), so the survivors always share blocks
``1..r``. After each round with at least :attr:`RaceRules.first_test` shared blocks,
:func:`compare` tests the survivors on those blocks:

1. the **leader** is the survivor with the best mean over the shared blocks (ties: the lower
   trial number); it is never tested, so elimination never drops the best current mean;
2. a **Friedman test** (ranks within each block, ties averaged, chi-square with ``k - 1`` degrees
   of freedom) asks whether the survivors differ at all; at ``p >= level`` nobody is eliminated;
3. otherwise every other survivor gets a **one-sided paired t-test** against the leader on the
   shared blocks (differences leader - survivor, ``n - 1`` degrees of freedom); those with
   ``p < level`` are eliminated.

The race stops when one survivor is left, when the next round would take the race past its
``budget`` of evaluations (a round is never run in part: blocks stay shared), or when
``max_blocks`` rounds are done. A race of a single candidate is a measurement: it runs on
``max_blocks`` blocks (within the budget), so the selected trial's value on fresh seed sets is
known whatever the number of candidates. The winner is the survivor with the best mean over the
race's blocks (ties: the lower trial number); a candidate's recorded search value never enters a
mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from base.checks import check_int, check_number

LEVEL = 0.05
"""Significance level of the Friedman test and of each paired t-test."""
FIRST_TEST = 2
"""Shared blocks before the first test (a paired t-test needs two)."""

ONE_LEFT = "one candidate left"
NO_CANDIDATE = "no candidate"
BUDGET_SPENT = "budget spent"
BLOCKS_SPENT = "seed sets per candidate spent"
"""Why a race stopped (:attr:`Race.stop`)."""


@dataclass(frozen=True)
class RaceRules:
    """How survivors are tested.

    Attributes:
        level: significance level of the Friedman test and of each paired t-test, in (0, 1).
        first_test: shared blocks before the first test (>= 2).
    """

    level: float = LEVEL
    first_test: int = FIRST_TEST

    def __post_init__(self) -> None:
        check_number("level", self.level, 0.0, 1.0, low_open=True, high_open=True)
        check_int("first_test", self.first_test, 2)


@dataclass(frozen=True)
class Elimination:
    """A candidate dropped after a round.

    Attributes:
        trial: the candidate.
        round: the round after which it was dropped (= the shared blocks it was tested on).
        mean: its mean over those blocks (the objective's own sign).
        leader: the leader it was tested against.
        leader_mean: the leader's mean over the same blocks.
        p_value: one-sided paired t-test p (leader better).
        friedman_p: the round's Friedman p.
    """

    trial: int
    round: int
    mean: float
    leader: int
    leader_mean: float
    p_value: float
    friedman_p: float

    @property
    def reason(self) -> str:
        """One line: against whom, on how many blocks, with which figures."""
        return (
            f"worse than #{self.leader} on {self.round} shared seed sets: mean {self.mean:.4f} "
            f"vs {self.leader_mean:.4f}, paired t-test p = {self.p_value:.3g} "
            f"(Friedman p = {self.friedman_p:.3g})"
        )


@dataclass(frozen=True)
class Round:
    """One round: who was evaluated on block ``number``, and the test after it.

    Attributes:
        number: the round, from 1; its block (seed set) is the same number.
        entrants: the survivors evaluated in it, in candidate order.
        friedman_p: the Friedman p after the round; None when no test ran (fewer than
            ``first_test`` blocks, or one entrant).
        eliminated: the candidates dropped after it.
    """

    number: int
    entrants: tuple[int, ...]
    friedman_p: float | None = None
    eliminated: tuple[Elimination, ...] = ()


def shared_blocks(values: Mapping[int, Mapping[int, float]]) -> list[int]:
    """The blocks every candidate in ``values`` has a value on, ascending."""
    sets = [set(v) for v in values.values()]
    return sorted(set.intersection(*sets)) if sets else []


def friedman_p(matrix: np.ndarray) -> float:
    """Friedman test p of a ``candidates x blocks`` matrix (ranks within each block, ties
    averaged, chi-square approximation with ``k - 1`` degrees of freedom; 1.0 when every block
    ties or there are fewer than two candidates or blocks)."""
    k, n = matrix.shape
    if k < 2 or n < 2:
        return 1.0
    ranks = np.apply_along_axis(stats.rankdata, 0, matrix)
    sums = ranks.sum(axis=1)
    total = float((ranks**2).sum())
    tied = n * k * (k + 1) ** 2 / 4.0
    if total - tied <= 1e-12:
        return 1.0
    q = (k - 1) * float(((sums - n * (k + 1) / 2.0) ** 2).sum()) / (total - tied)
    return float(stats.chi2.sf(q, k - 1))


def paired_p(better: np.ndarray, other: np.ndarray) -> float:
    """One-sided paired t-test p that ``better`` exceeds ``other`` on average (same blocks).

    Constant differences: 0.0 when positive, 1.0 otherwise (the t statistic is infinite or
    undefined). Needs at least two blocks.
    """
    diff = np.asarray(better, dtype=np.float64) - np.asarray(other, dtype=np.float64)
    if diff.size < 2:
        raise ValueError(f"a paired t-test needs >= 2 blocks, but got {diff.size}.")
    sd = float(diff.std(ddof=1))
    mean = float(diff.mean())
    if sd <= 1e-12 * max(1.0, abs(mean)):
        return 0.0 if mean > 0 else 1.0
    t = mean / (sd / math.sqrt(diff.size))
    return float(stats.t.sf(t, diff.size - 1))


def leader_of(means: Mapping[int, float], maximize: bool = True) -> int:
    """The candidate with the best mean (ties: the lower number)."""
    sign = 1.0 if maximize else -1.0
    return min(means, key=lambda t: (-sign * means[t], t))


def compare(
    values: Mapping[int, Mapping[int, float]],
    *,
    round_number: int,
    rules: RaceRules = RaceRules(),
    maximize: bool = True,
) -> tuple[float | None, list[Elimination]]:
    """Test the survivors on the blocks they all share; return the Friedman p and who goes.

    Args:
        values: survivor -> {block: value}; blocks not shared by every survivor are ignored.
        round_number: recorded in each :class:`Elimination`.
        rules: level and the fewest shared blocks for a test.
        maximize: True when larger values are better.

    Returns:
        ``(friedman_p, eliminations)``; ``(None, [])`` when there are fewer than two survivors or
        fewer than ``rules.first_test`` shared blocks. The leader (best mean on the shared
        blocks) is never eliminated.
    """
    blocks = shared_blocks(values)
    if len(values) < 2 or len(blocks) < rules.first_test:
        return None, []
    trials = list(values)
    matrix = np.array([[values[t][b] for b in blocks] for t in trials], dtype=np.float64)
    oriented = matrix if maximize else -matrix
    means = dict(zip(trials, matrix.mean(axis=1).tolist(), strict=True))
    lead = leader_of(means, maximize)
    omnibus = friedman_p(oriented)
    if omnibus >= rules.level:
        return omnibus, []
    row = {t: i for i, t in enumerate(trials)}
    out = []
    for t in trials:
        if t == lead:
            continue
        p = paired_p(oriented[row[lead]], oriented[row[t]])
        if p < rules.level:
            out.append(Elimination(t, round_number, means[t], lead, means[lead], p, omnibus))
    return omnibus, out


@dataclass(frozen=True)
class Race:
    """A race so far: candidates, rounds run, values used. Advance it with :meth:`advance`.

    Attributes:
        candidates: trial numbers, best recorded value first.
        budget: the most evaluations the race may use.
        max_blocks: the most rounds (fresh seed sets per candidate).
        rules: the tests.
        maximize: True when larger values are better.
        rounds: the rounds run.
        values: per candidate, its values on blocks ``1..`` (one per round it took part in).
    """

    candidates: tuple[int, ...]
    budget: int
    max_blocks: int
    rules: RaceRules = RaceRules()
    maximize: bool = True
    rounds: tuple[Round, ...] = ()
    values: Mapping[int, tuple[float, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError(f"race candidates must be distinct, but got {list(self.candidates)}.")
        check_int("budget", self.budget, 0)
        check_int("max_blocks", self.max_blocks, 0)

    @property
    def eliminated(self) -> list[Elimination]:
        """Every elimination so far, in round order."""
        return [e for r in self.rounds for e in r.eliminated]

    @property
    def survivors(self) -> tuple[int, ...]:
        """Candidates still in the race, in candidate order."""
        gone = {e.trial for e in self.eliminated}
        return tuple(t for t in self.candidates if t not in gone)

    @property
    def evaluations(self) -> int:
        """Values the race has used: one per entrant and round."""
        return sum(len(r.entrants) for r in self.rounds)

    @property
    def stop(self) -> str | None:
        """Why the race is over (:data:`ONE_LEFT`, :data:`BUDGET_SPENT`, :data:`BLOCKS_SPENT`,
        :data:`NO_CANDIDATE`), or None while another round can run."""
        alive = len(self.survivors)
        if alive == 0:
            return NO_CANDIDATE
        if alive == 1 and len(self.candidates) > 1:
            return ONE_LEFT
        if len(self.rounds) >= self.max_blocks:
            return BLOCKS_SPENT
        if self.evaluations + alive > self.budget:
            return BUDGET_SPENT
        return None

    @property
    def next_block(self) -> int | None:
        """The block the next round evaluates (None: the race is over)."""
        return None if self.stop else len(self.rounds) + 1

    @property
    def certain_blocks(self) -> tuple[int, ...]:
        """Blocks every current survivor will be evaluated on, whatever the values: the next
        one, and the ones after it while no test can run in between (fewer than
        ``rules.first_test`` shared blocks, or a single candidate, which is never tested) and the
        budget and ``max_blocks`` allow. Their
        evaluations can all run at once (no barrier between the first rounds)."""
        out: list[int] = []
        done, alive, used = len(self.rounds), len(self.survivors), self.evaluations
        while self.stop is None:
            block = done + 1
            if block > self.max_blocks or used + alive > self.budget:
                break
            out.append(block)
            done, used = block, used + alive
            if done >= self.rules.first_test and alive > 1:  # a test runs after this round
                break
        return tuple(out)

    def mean(self, trial: int) -> float:
        """``trial``'s mean over the blocks it raced on (NaN: none)."""
        v = self.values.get(trial, ())
        return float(np.mean(v)) if v else math.nan

    @property
    def leader(self) -> int | None:
        """The survivor with the best mean over the race's blocks (None: no round yet, or no
        candidate); once the race is over, its winner."""
        if not self.rounds or not self.survivors:
            return None
        return leader_of({t: self.mean(t) for t in self.survivors}, self.maximize)

    @property
    def winner(self) -> int | None:
        """The selected candidate once the race is over: the last survivor, else the leader;
        None while the race runs, and when it ended before its first round with several
        candidates (a budget smaller than one round)."""
        if self.stop is None:
            return None
        if len(self.survivors) == 1:
            return self.survivors[0]
        return self.leader

    def advance(self, block_values: Mapping[int, float]) -> Race:
        """This race after one more round with ``block_values`` (every survivor's value on
        :attr:`next_block`).

        Raises:
            ValueError: the race is over, or a survivor's value is missing or not finite.
        """
        block = self.next_block
        if block is None:
            raise ValueError(f"the race is over ({self.stop}); no round {len(self.rounds) + 1}.")
        entrants = self.survivors
        missing = [t for t in entrants if t not in block_values]
        bad = {t: block_values[t] for t in entrants if t in block_values}
        bad = {t: v for t, v in bad.items() if not math.isfinite(v)}
        if missing or bad:
            raise ValueError(
                f"round {block} needs a finite value of every survivor {list(entrants)}, but "
                f"missing {missing}, not finite {bad}."
            )
        values = dict(self.values)
        for t in entrants:
            values[t] = (*values.get(t, ()), float(block_values[t]))
        per_block = {t: dict(enumerate(values[t], start=1)) for t in entrants}
        omnibus, out = compare(
            per_block, round_number=block, rules=self.rules, maximize=self.maximize
        )
        done = Round(block, entrants, omnibus, tuple(out))
        return replace(self, rounds=(*self.rounds, done), values=values)


def run_race(
    candidates: Sequence[int],
    value: Callable[[int, int], float | None],
    *,
    budget: int,
    max_blocks: int,
    rules: RaceRules = RaceRules(),
    maximize: bool = True,
) -> Race:
    """Run a race as far as ``value(trial, block)`` knows the values (None: not known yet).

    Deterministic: the same values give the same race, so a stored race is replayed, not trusted.
    """
    race = Race(tuple(candidates), budget, max_blocks, rules, maximize)
    while (block := race.next_block) is not None:
        known = {t: value(t, block) for t in race.survivors}
        if any(v is None for v in known.values()):
            break
        race = race.advance(known)  # type: ignore[arg-type]
    return race


__all__ = [
    "BLOCKS_SPENT",
    "BUDGET_SPENT",
    "FIRST_TEST",
    "LEVEL",
    "NO_CANDIDATE",
    "ONE_LEFT",
    "Elimination",
    "Race",
    "RaceRules",
    "Round",
    "compare",
    "friedman_p",
    "leader_of",
    "paired_p",
    "run_race",
    "shared_blocks",
]
