"""The packed chunk layout: packing, M4 summaries, chunking, the forward-only filter, EMA."""

from __future__ import annotations

import math

import numpy as np

from r1studio.metrics import storage


def test_it_round_trips_packed_points() -> None:
    steps = np.arange(5, dtype=np.int64) * 10
    values = np.array([0.5, -1.0, math.nan, 3.25, 1e-9])
    out_steps, out_values = storage.unpack(memoryview(storage.pack(steps, values)))
    assert out_steps.tolist() == steps.tolist()
    assert np.array_equal(out_values, values, equal_nan=True)
    assert [a.size for a in storage.unpack(b"")] == [0, 0]


def test_it_keeps_first_min_max_and_last_of_every_bucket() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=1000)
    values[333] = 50.0
    values[777] = -50.0
    index = storage.m4_indices(values, bucket=64)
    assert {0, 333, 777, 999} <= set(index.tolist())
    assert list(index) == sorted(set(index.tolist()))
    assert len(index) <= 4 * math.ceil(1000 / 64)
    for start in range(0, 1000, 64):
        bucket = values[start : start + 64]
        assert start + int(bucket.argmax()) in index
        assert start + int(bucket.argmin()) in index


def test_it_converts_non_numbers_to_nan() -> None:
    values = storage.to_values([1, 2.5, None, "oops"])
    assert values[:2].tolist() == [1.0, 2.5]
    assert np.isnan(values[2:]).all()


def test_it_keeps_only_points_that_move_the_series_forward() -> None:
    steps = np.array([3, 4, 4, 2, 5], dtype=np.int64)
    values = np.array([1.0, 2.0, 99.0, 98.0, 3.0])
    kept_steps, kept_values = storage.new_points(steps, values, last_step=3)
    assert kept_steps.tolist() == [4, 5]
    assert kept_values.tolist() == [2.0, 3.0]


def test_it_splits_points_into_full_chunks_and_a_tail() -> None:
    steps = np.arange(10, dtype=np.int64)
    chunks, (tail_steps, _) = storage.split_chunks(steps, steps.astype(float), size=4)
    assert [c[0].tolist() for c in chunks] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert tail_steps.tolist() == [8, 9]


def test_it_smooths_like_tensorboard() -> None:
    smoothed = storage.ema([1.0, None, 3.0], 0.5)
    # debiased EMA: the first point is the value itself, None is skipped, not averaged in
    assert smoothed[0] == 1.0
    assert smoothed[1] is None
    assert math.isclose(smoothed[2], (0.5 * 0.5 * 1.0 + 0.5 * 3.0) / (1 - 0.25))
