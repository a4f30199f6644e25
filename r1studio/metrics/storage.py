"""How metric points are laid out in the database: packed numpy arrays, in chunks.

A run logs ~30 series (TRL's `reward`, `loss`, `kl`, ...), one point per step each. One row per
point would make a chart of a 1M-point series fetch 1M rows, which no database does in 100 ms.
So a series is stored as:

- *chunks* (`MetricChunk`): `CHUNK_POINTS` consecutive points packed into one binary column
  (`int64` steps then `float64` values, little-endian), written once when full and never
  rewritten; each chunk also carries an M4 *summary* (first, min, max and last point of every
  `SUMMARY_BUCKET` points), 1/16 of the size, from which a chart of a long series is drawn;
- a *tail* (`MetricSeries.tail`): the points of the chunk being filled, rewritten at each
  ingest (at most `CHUNK_POINTS` points).

Why M4 for the summary: keeping each bucket's first, last, minimum and maximum point means
every extreme of the series survives, so downsampling the summary again shows the same spikes
as downsampling the raw points would. NaN (a diverged loss) is kept as a value: summaries pick
it up when it is the first or last point of a bucket, and the chart shows a gap.

This module is pure numpy; `services.py` and `selectors.py` do the database work.
"""

from __future__ import annotations

import math

import numpy as np

CHUNK_POINTS = 4096
SUMMARY_BUCKET = 64
_STEP = np.dtype("<i8")
_VALUE = np.dtype("<f8")

EMPTY_STEPS = np.zeros(0, dtype=_STEP)
EMPTY_VALUES = np.zeros(0, dtype=_VALUE)


def pack(steps: np.ndarray, values: np.ndarray) -> bytes:
    """Steps and values as one blob: n int64 steps followed by n float64 values."""
    return steps.astype(_STEP, copy=False).tobytes() + values.astype(_VALUE, copy=False).tobytes()


def unpack(blob: bytes | memoryview | None) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `pack`; an empty or missing blob gives two empty arrays."""
    if not blob:
        return EMPTY_STEPS, EMPTY_VALUES
    raw = np.frombuffer(bytes(blob) if isinstance(blob, memoryview) else blob, dtype=np.uint8)
    n = raw.size // 16
    return raw[: n * 8].view(_STEP), raw[n * 8 : n * 16].view(_VALUE)


def to_values(values: list) -> np.ndarray:
    """Metric values as float64; None, strings and other non-numbers become NaN.

    The fast path is one numpy conversion; the slow path runs only for a batch that holds a
    value numpy cannot convert (a null for a NaN loss, say).
    """
    try:
        return np.asarray(values, dtype=_VALUE)
    except (TypeError, ValueError):
        out = np.empty(len(values), dtype=_VALUE)
        for i, value in enumerate(values):
            try:
                out[i] = float(value)
            except (TypeError, ValueError):
                out[i] = math.nan
        return out


def new_points(
    steps: np.ndarray, values: np.ndarray, last_step: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Keep only points that move the series forward: step > every step before it.

    Re-ingesting a batch, or a resumed run logging again the steps since its checkpoint, thus
    stores nothing twice (the first value of a step wins).
    """
    if steps.size == 0:
        return steps, values
    floor = np.iinfo(np.int64).min if last_step is None else last_step
    running_max = np.maximum.accumulate(np.concatenate(([floor], steps)))
    keep = steps > running_max[:-1]
    if keep.all():
        return steps, values
    return steps[keep], values[keep]


def m4_indices(values: np.ndarray, bucket: int = SUMMARY_BUCKET) -> np.ndarray:
    """Sorted, distinct indices of the first, min, max and last point of each bucket."""
    n = values.size
    if n <= 4:
        return np.arange(n)
    full = n // bucket
    parts = []
    if full:
        block = values[: full * bucket].reshape(full, bucket)
        offsets = np.arange(full) * bucket
        lows = np.where(np.isnan(block), np.inf, block).argmin(axis=1) + offsets
        highs = np.where(np.isnan(block), -np.inf, block).argmax(axis=1) + offsets
        parts += [offsets, lows, highs, offsets + bucket - 1]
    if n > full * bucket:
        rest = values[full * bucket :]
        start = full * bucket
        lo = int(np.where(np.isnan(rest), np.inf, rest).argmin())
        hi = int(np.where(np.isnan(rest), -np.inf, rest).argmax())
        parts.append(np.array([start, start + lo, start + hi, n - 1]))
    return np.unique(np.concatenate(parts))


def summarize(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The M4 summary of a run of points (see the module docstring)."""
    index = m4_indices(values)
    return steps[index], values[index]


def split_chunks(
    steps: np.ndarray, values: np.ndarray, size: int = CHUNK_POINTS
) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """Cut points into full chunks of `size` and the remaining tail (shorter than `size`)."""
    full = steps.size // size
    chunks = [
        (steps[i * size : (i + 1) * size], values[i * size : (i + 1) * size]) for i in range(full)
    ]
    return chunks, (steps[full * size :], values[full * size :])


def ema(values: list[float | None] | np.ndarray, weight: float) -> list[float | None]:
    """TensorBoard's debiased exponential moving average; `weight` in [0, 1).

    NaN and None points pass through unsmoothed (a gap stays a gap); the average skips them.
    charts.js implements the same formula for the slider and for live points.
    """
    out: list[float | None] = []
    last, count = 0.0, 0
    for raw in values:
        if raw is None or not math.isfinite(raw):
            out.append(None)
            continue
        count += 1
        last = last * weight + (1 - weight) * raw
        out.append(last / (1 - weight**count))
    return out


def json_values(values: np.ndarray) -> list[float | None]:
    """Values for JSON: NaN and infinities become null (JSON has no NaN)."""
    listed = values.tolist()
    if np.isfinite(values).all():
        return listed
    return [v if math.isfinite(v) else None for v in listed]
