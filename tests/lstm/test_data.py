"""Scaling, zero-copy windows and device-resident batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm.data import (
    RobustScaler,
    WindowedBatches,
    split_train_val,
    valid_window_ends,
    window_view,
)


def test_robust_scaler_hand_computed() -> None:
    x = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 5.0], [100.0, 5.0]])
    s = RobustScaler.fit(x, labels=np.array([1.0, 3.0, np.nan]))
    np.testing.assert_array_equal(s.center, [3.0, 5.0])  # medians
    np.testing.assert_array_equal(s.scale, [2.0, 1.0])  # IQR 4-2; constant column -> 1
    assert (s.label_center, s.label_scale) == (2.0, 1.0)  # mean/std of the finite labels
    np.testing.assert_array_equal(s.transform(np.array([[7.0, 6.0]])), [[2.0, 1.0]])
    np.testing.assert_allclose(s.inverse_labels(s.transform_labels(np.array([4.0]))), [4.0])


def test_robust_scaler_ignores_nan_and_names_empty_columns() -> None:
    x = np.array([[1.0, np.nan], [np.nan, np.nan], [3.0, np.inf]])
    with pytest.raises(ValueError, match=r"feature column\(s\) \[1\]"):
        RobustScaler.fit(x)
    s = RobustScaler.fit(x[:, :1])
    assert s.center[0] == 2.0
    with pytest.raises(ValueError, match=r"\(rows, 1\) features, but got x.shape=\(2, 3\)"):
        s.transform(np.zeros((2, 3)))


def test_robust_scaler_round_trip() -> None:
    s = RobustScaler.fit(np.arange(12.0).reshape(6, 2), np.arange(6.0))
    t = RobustScaler.from_dict(s.to_dict())
    np.testing.assert_array_equal(t.center, s.center)
    np.testing.assert_array_equal(t.scale, s.scale)
    assert (t.label_center, t.label_scale) == (s.label_center, s.label_scale)


@pytest.mark.parametrize("as_torch", [False, True])
def test_window_view_is_a_view_with_the_right_rows(
    real_features: np.ndarray, as_torch: bool
) -> None:
    x = torch.from_numpy(real_features) if as_torch else real_features
    w = 5
    v = window_view(x, w)
    assert tuple(v.shape) == (real_features.shape[0] - w + 1, w, real_features.shape[1])
    if as_torch:
        assert v.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
    else:
        assert np.shares_memory(v, x)
    i = 37  # the window ending at row i is window i - w + 1
    np.testing.assert_array_equal(np.asarray(v[i - w + 1]), real_features[i - w + 1 : i + 1])
    with pytest.raises(ValueError, match="window=0"):
        window_view(x, 0)


def test_valid_window_ends_hand_computed() -> None:
    finite = np.array([1, 1, 1, 0, 1, 1, 1, 1], dtype=bool)
    np.testing.assert_array_equal(valid_window_ends(finite, 3), [0, 0, 1, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(valid_window_ends(finite, 1), finite)


def test_split_is_time_ordered() -> None:
    fit, val = split_train_val(np.array([9, 3, 4, 5, 6, 7, 8, 10, 11, 12]), 0.2)
    np.testing.assert_array_equal(fit, [3, 4, 5, 6, 7, 8, 9, 10])
    np.testing.assert_array_equal(val, [11, 12])
    with pytest.raises(ValueError, match=r"samples\.size=2"):
        split_train_val(np.array([1, 2]), 0.2)


def _batches(
    rows: torch.Tensor, samples: torch.Tensor, shuffle: bool, seed: int = 0
) -> WindowedBatches:
    labels = torch.arange(rows.shape[0], dtype=torch.float32)  # label i == its row index
    return WindowedBatches(
        rows,
        labels,
        samples,
        window=4,
        batch_size=32,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed),
    )


def test_batches_cover_each_sample_once_with_matching_windows(real_features: np.ndarray) -> None:
    rows = torch.from_numpy(real_features)
    samples = torch.arange(10, 300)
    batches = _batches(rows, samples, shuffle=True)
    seen = []
    for xb, yb in batches:
        assert xb.device == rows.device and xb.shape[1:] == (4, rows.shape[1])
        for xj, yj in zip(xb, yb, strict=True):
            i = int(yj)
            torch.testing.assert_close(xj, rows[i - 3 : i + 1], rtol=0, atol=0)
            seen.append(i)
    assert len(batches) == len(list(iter(batches))) == 10
    assert sorted(seen) == samples.tolist()


def test_shuffle_is_seeded_per_epoch_and_validation_is_ordered(real_features: np.ndarray) -> None:
    rows = torch.from_numpy(real_features)
    samples = torch.arange(10, 300)

    def order(b: WindowedBatches) -> list[int]:
        return [int(v) for _, yb in b for v in yb]

    a, b = _batches(rows, samples, True, seed=1), _batches(rows, samples, True, seed=1)
    first = order(a)
    assert first == order(b)  # same seed, same order
    assert first != order(a)  # the next epoch is reshuffled
    assert first != order(_batches(rows, samples, True, seed=2))
    assert order(_batches(rows, samples, False)) == samples.tolist()


def test_batches_reject_samples_without_history(real_features: np.ndarray) -> None:
    rows = torch.from_numpy(real_features)
    with pytest.raises(ValueError, match=r"samples must lie in \[3, "):
        _batches(rows, torch.arange(2, 20), shuffle=False)


def test_split_gap_keeps_fit_labels_out_of_the_validation_period():
    from lstm.data import split_train_val

    samples = np.arange(10, 110)
    fit, val = split_train_val(samples, 0.2)
    assert fit[-1] == 89 and val[0] == 90 and val.size == 20
    fit_gap, val_gap = split_train_val(samples, 0.2, gap=4)
    np.testing.assert_array_equal(val_gap, val)
    assert fit_gap[-1] == 85  # 85 + h = 89 < 90: no fit label from the validation period
    np.testing.assert_array_equal(fit_gap, fit[: fit_gap.size])
