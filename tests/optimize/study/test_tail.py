"""The race's head start in the search's tail (optimize.study.tail).

Real studies (copies of the session's smoke study: 2 complete trials), a real evaluation pool;
the search's last running trials are real RUNNING trials (``study.ask()``).
"""

from __future__ import annotations

import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import optuna
import psutil
import pytest
from optuna.trial import TrialState, create_trial

from optimize.study.records import study_config
from optimize.study.robustness import next_jobs, run_robustness, top_trials
from optimize.study.seednoise import read_values
from optimize.study.tail import TailStart
from tests.optimize.study.helpers import copy_study

RACE = {"top": 2, "budget": 4, "seed_sets": 2}
"""Both rounds are certain (no test before 2 shared seed sets): 4 evaluations to start early."""


def _study(source: Path, target: Path) -> optuna.Study:
    return optuna.load_study(study_name="smoke", storage=copy_study(source, target))


def _tail(study: optuna.Study, *, workers: int = 2, extra: int = 1) -> TailStart:
    """A tail for ``study`` whose target is its finished trials + ``extra`` still to finish."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    config = study_config(study)
    return TailStart(study, config, workers=workers, target=len(done) + extra, **RACE)


def _wait(tail: TailStart, stored: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while tail.stored < stored and time.monotonic() < deadline:
        time.sleep(0.2)
        tail.poll()
    assert tail.stored >= stored, f"only {tail.stored} value(s) after {timeout} s"


def _evaluators() -> list[psutil.Process]:
    """This process's evaluation processes (spawned pool workers; not the resource tracker)."""
    return [
        c
        for c in psutil.Process().children(recursive=True)
        if "spawn_main" in " ".join(c.cmdline())
    ]


def _values(study: optuna.Study) -> dict[tuple[int, int], float]:
    return {(v.trial, v.seed_set): v.value for v in read_values(study)}


@pytest.fixture(scope="module")
def reference(smoke_study_file, tmp_path_factory):
    """The race of the smoke study run from scratch, with no head start."""
    study = _study(smoke_study_file, tmp_path_factory.mktemp("tail-ref") / "ref.db")
    return run_robustness(study, **RACE), _values(study)


def test_nothing_starts_while_every_worker_runs_a_trial_or_trials_are_still_to_start(
    smoke_study_file, tmp_path
) -> None:
    study = _study(smoke_study_file, tmp_path / "busy.db")
    with _tail(study, extra=2) as tail:
        study.ask()  # one worker runs a trial, a trial is still to start: no idle core yet
        tail.poll()
        assert not tail.pending
        study.ask()  # both workers run the last two trials
        tail.poll()
        assert not tail.pending and not _evaluators()
    assert _values(study) == {}


def test_only_candidates_no_running_trial_can_push_out_are_evaluated(
    smoke_study_file, tmp_path
) -> None:
    """3 workers, one idle, two running the last trials: each could push one of the race's 2
    candidates out, so none is sure and nothing starts."""
    study = _study(smoke_study_file, tmp_path / "unsure.db")
    with _tail(study, workers=3, extra=2) as tail:
        study.ask(), study.ask()
        tail.poll()
        assert not tail.pending and not _evaluators()
    assert next_jobs(study, **RACE, sure=0) == []
    assert len(next_jobs(study, **RACE)) == 4


def test_head_start_values_are_the_race_s_and_are_not_recomputed(
    smoke_study_file, tmp_path, reference
) -> None:
    """One worker idle while the other runs the last trial: the tail evaluates the best
    candidate's jobs (the only one the last trial cannot push out), one at a time, in the race's
    order; the race then reads the running one and computes only the rest; values, rounds and
    winner equal a race run without a head start."""
    expected_race, expected_values = reference
    study = _study(smoke_study_file, tmp_path / "tail.db")
    best = top_trials(study, 1)[0].number
    order = [(n, m) for n, _, m in next_jobs(study, **RACE)]
    sure = [(n, m) for n, _, m in next_jobs(study, **RACE, sure=1)]
    assert len(order) == 4 and sure == [(n, m) for n, m in order if n == best]
    assert sorted(sure) == [(best, 1), (best, 2)]
    computed: list = []
    with _tail(study) as tail:
        last = study.ask()  # the search's last trial, still running
        tail.poll()
        assert list(tail.pending) == sure[:1]  # one idle core: one evaluation at a time
        _wait(tail, 1)
        tail.poll()
        assert list(tail.pending) == sure[1:]
        assert _values(study) == {sure[0]: expected_values[sure[0]]}
        study.tell(last, state=TrialState.FAIL)  # ends without entering the race
        race = run_robustness(
            study,
            **RACE,
            evaluator=tail.evaluator,
            pending=tail.pending,
            on_value=computed.append,
        )
        assert not tail.pending  # the race took over the running evaluation
    assert race == expected_race
    assert _values(study) == expected_values
    assert sorted((v.trial, v.seed_set) for v in computed) == sorted(set(order) - set(sure[:1]))


def test_a_last_trial_that_enters_the_race_wastes_nothing(smoke_study_file, tmp_path) -> None:
    """The last trial completes with the best recorded value and takes the second candidate's
    place: the head start's values (of the best candidate) are all used, the race computes only
    the new candidate's, equals a race run without a head start on the same trials, and no
    evaluation process is left when the block ends."""
    study = _study(smoke_study_file, tmp_path / "moved.db")
    plain = _study(smoke_study_file, tmp_path / "plain.db")
    computed: list = []
    with _tail(study) as tail:
        last = study.ask()
        tail.poll()
        _wait(tail, 2)
        early = set(_values(study))
        children = _evaluators()
        assert children, "no evaluation process started"
        # The last trial ends with the best value (a copy of the second candidate's parameters).
        study.tell(last, state=TrialState.FAIL)
        plain.tell(plain.ask(), state=TrialState.FAIL)  # the same trial numbers in both
        first, second = top_trials(study, 2)
        for target in (study, plain):
            target.add_trial(
                create_trial(
                    params=second.params,
                    distributions=second.distributions,
                    value=first.value + 1.0,
                    user_attrs=second.user_attrs,
                )
            )
        race = run_robustness(
            study, **RACE, evaluator=tail.evaluator, pending=tail.pending, on_value=computed.append
        )
    assert early == {(first.number, 1), (first.number, 2)}
    assert first.number in race.candidates and second.number not in race.candidates
    assert {(v.trial, v.seed_set) for v in computed}.isdisjoint(early)
    assert len(computed) == 2
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"evaluation processes left: {[p.pid for p in alive]}"
    assert race == run_robustness(plain, **RACE)
    assert _values(plain) == _values(study)


def test_leaving_the_block_stops_running_evaluations_at_once(smoke_study_file, tmp_path) -> None:
    """An interrupted run leaves the block with an evaluation running: its process is killed
    (not waited for) and nothing half-done is stored."""
    study = _study(smoke_study_file, tmp_path / "stop.db")
    with _tail(study) as tail:
        study.ask()
        tail.poll()
        assert len(tail.pending) == 1
        deadline = time.monotonic() + 120
        children: list = []
        while not children and time.monotonic() < deadline:
            time.sleep(0.2)
            children = _evaluators()
        assert children, "no evaluation process started"
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"evaluation processes left: {[p.pid for p in alive]}"
    # killed mid-evaluation, not waited for: the evaluation never finished
    assert [type(f.exception()) for f in tail.pending.values()] == [BrokenProcessPool]
    assert _values(study) == {}
