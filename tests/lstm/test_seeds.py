"""The seed rule: a function of (study seed, pair, training end, member) and nothing else."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from lstm.seeds import member_range, model_seed

END = pd.Timestamp("2025-04-01 23:00", tz="UTC")


def test_seed_in_range_and_stable_across_processes() -> None:
    seed = model_seed(42, "BTC/USDT", END, 0)
    assert 0 <= seed < 2**32
    code = (
        "import pandas as pd; from lstm.seeds import model_seed; "
        "print(model_seed(42, 'BTC/USDT', pd.Timestamp('2025-04-01 23:00', tz='UTC'), 0))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert int(other.stdout) == seed  # no dependence on Python's per-process hash salt


@pytest.mark.parametrize("change", ["study", "pair", "end", "member"])
def test_every_input_changes_the_seed(change: str) -> None:
    args = {"study_seed": 42, "pair": "BTC/USDT", "train_end": END, "member": 0}
    base = model_seed(**args)
    args = dict(
        args,
        **{
            "study": {"study_seed": 43},
            "pair": {"pair": "ETH/USDT"},
            "end": {"train_end": END + pd.Timedelta(hours=1)},
            "member": {"member": 1},
        }[change],
    )
    assert model_seed(**args) != base


def test_naive_end_is_utc() -> None:
    assert model_seed(1, "SOL/USDT", "2025-04-01 23:00") == model_seed(1, "SOL/USDT", END)


def test_member_ranges_of_seed_sets_do_not_overlap() -> None:
    assert list(member_range(3, 0)) == [0, 1, 2]
    assert list(member_range(3, 2)) == [6, 7, 8]
    with pytest.raises(ValueError, match="ensemble_size"):
        member_range(0)


def test_bad_inputs_named() -> None:
    with pytest.raises(ValueError, match="member"):
        model_seed(1, "BTC/USDT", END, -1)
    with pytest.raises(ValueError, match="train_end"):
        model_seed(1, "BTC/USDT", pd.NaT)
