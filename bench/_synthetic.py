"""Synthetic dataset rows with realistic lengths, for the curation benches and tests.

A row looks like a rejection-sampled R1 sample: `problem` (100-600 characters), `think`
(2,000-8,000 characters of step-by-step reasoning, about 1 row in 50 with a sentence of
Chinese in it, the mixed-language case R1 filters), `answer` and `reference` (short; equal
when `correct`), `source` (a handful of benchmark-like names, skewed) and `correct` (about
70% true). Deterministic for a seed.

The text is drawn word by word from a Zipf-like vocabulary with numbers, then assembled from
a pool of such sentences, so Parquet's zstd compresses it about as well as real reasoning
text (3-4x) rather than to nothing, and generating 800k rows takes about a minute.

    from _synthetic import synthetic_rows, synthetic_batches, synthetic_parquet
    rows = list(synthetic_rows(1000, seed=0))                 # dicts
    synthetic_parquet("/tmp/800k.parquet", 800_000, seed=0)   # the layout versions use
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

COLUMNS = ("problem", "think", "answer", "reference", "source", "correct")
SOURCES = ("numina-math", "gsm8k", "math", "aime", "olympiad", "code-contests", "amc")
SOURCE_WEIGHTS = (40, 20, 15, 3, 10, 10, 2)
_WORD_TEXT = (
    "the so we then sum of is and to a check that this number let me first next add carry "
    "multiply divide subtract equals result gives value term both sides equation solve for "
    "x y n k digits square root prime factor remainder modulo wait hmm actually verify again "
    "compute total each case count ways probability expected area triangle circle radius "
    "angle side length perimeter sequence series limit integral derivative function graph "
    "point line slope intercept substitute simplify expand factorise fraction numerator "
    "denominator common ratio difference arithmetic geometric mean median mode therefore "
    "hence because since notice observe assume suppose contradiction induction base step"
)
WORDS = _WORD_TEXT.split()
CHINESE = "我们先计算这个数的平方然后再检查结果是否正确所以答案应该是"
POOL_SENTENCES = 60_000


def _sentence(rng: random.Random) -> str:
    n = rng.randint(6, 22)
    words = []
    for _ in range(n):
        if rng.random() < 0.15:
            words.append(str(rng.randint(0, 9999)))
        else:  # Zipf-like: the first words of WORDS are the common ones
            words.append(WORDS[min(int(rng.paretovariate(1.1)) - 1, len(WORDS) - 1)])
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice((".", ".", ".", ",", "?", ":"))


class _Pool:
    """Sentences drawn once per seed; rows are assembled from them."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed * 7919 + 1)
        self.sentences = [_sentence(rng) for _ in range(POOL_SENTENCES)]

    def text(self, rng: random.Random, chars: int) -> str:
        parts: list[str] = []
        size = 0
        while size < chars:
            s = self.sentences[rng.randrange(POOL_SENTENCES)]
            if rng.random() < 0.08:
                s = "\n\n" + s
            parts.append(s)
            size += len(s) + 1
        return " ".join(parts)[:chars]


def _row(pool: _Pool, rng: random.Random) -> dict[str, Any]:
    a, b = rng.randint(2, 999), rng.randint(2, 999)
    problem = f"Compute {a} * {b} and then " + pool.text(rng, rng.randint(80, 560)) + "?"
    think = pool.text(rng, rng.randint(2000, 8000))
    if rng.random() < 0.02:
        cut = rng.randrange(len(think))
        think = think[:cut] + " " + CHINESE + " " + think[cut:]
    answer = str(a * b)
    correct = rng.random() < 0.7
    reference = answer if correct else str(a * b + rng.randint(1, 50))
    source = rng.choices(SOURCES, SOURCE_WEIGHTS)[0]
    return {
        "problem": problem,
        "think": think,
        "answer": answer,
        "reference": reference,
        "source": source,
        "correct": correct,
    }


def synthetic_rows(n: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """`n` rows (dicts with COLUMNS), the same ones for the same seed."""
    pool = _Pool(seed)
    rng = random.Random(seed)
    for _ in range(n):
        yield _row(pool, rng)


def synthetic_batches(n: int, seed: int = 0, batch_rows: int = 16_384) -> Iterator[Any]:
    """The same rows as `synthetic_rows`, as pyarrow RecordBatches of `batch_rows`."""
    import pyarrow as pa

    batch: list[dict[str, Any]] = []
    for row in synthetic_rows(n, seed):
        batch.append(row)
        if len(batch) == batch_rows:
            yield pa.RecordBatch.from_pylist(batch)
            batch = []
    if batch:
        yield pa.RecordBatch.from_pylist(batch)


def synthetic_parquet(path: str | Path, n: int, seed: int = 0) -> Path:
    """Write `n` rows to a Parquet file laid out as dataset versions are (zstd, row groups
    of 16,384 rows; see r1studio.curation.storage), streaming: memory stays one batch."""
    import pyarrow.parquet as pq

    path = Path(path)
    writer = None
    try:
        for batch in synthetic_batches(n, seed):
            if writer is None:
                writer = pq.ParquetWriter(path, batch.schema, compression="zstd")
            writer.write_batch(batch, row_group_size=16_384)
    finally:
        if writer is not None:
            writer.close()
    return path
