"""Dedup + decontamination throughput on one core, and what they find.

Synthetic rows of realistic size and variety: problems of 100-600 characters, reasoning of
2-8k characters drawn word by word from a 30,000-word Zipf vocabulary with numbers and LaTeX
bits (so every batch meets tens of thousands of distinct tokens, as real reasoning does: the
dedup caches distinct tokens, and a tiny vocabulary would flatter it). Planted among them:
4% exact repeats (whitespace changed), 4% near repeats (0.5-1% of the words replaced: Jaccard 0.9-0.95), 1%
problems copied from MATH-500 into a sentence.

The rows run through the operations a curation job would use, with default params:
``exact_dedup``, ``near_dedup`` (MinHash LSH, threshold 0.8, 128 permutations, 5-token
shingles over problem + completion) and ``decontaminate`` (word 8-grams of the problem against
every benchmark preset), via ``pipeline.curation.apply_operations`` over in-memory record
batches of 8,192 rows (reading the Parquet file is the job's, not counted here). pyarrow is
held to one thread. The rate is counted in CPU seconds of this process (the fastest of
``--repeat`` runs, less the one-off cost of building the filters, printed apart): on a shared
machine wall time also counts the neighbours' turns.

Targets (PASS/FAIL, exit 1 on a miss): >= 10,000 rows/s (text-dedup's MinHash alone runs
~5.8k docs/s); every exact repeat and benchmark copy found; >= 95% of the near repeats found;
<= 0.1% of the other rows dropped.

    .venv/bin/python bench/dedup.py [--rows 50000] [--seed 0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from _checks import verdict

ROOT = Path(__file__).resolve().parents[1]
MIN_ROWS_PER_CPU_S = 10_000
MIN_NEAR_RECALL = 0.95
MAX_FALSE_DROPS = 0.001
SYLLABLES = [
    "ba",
    "be",
    "bi",
    "bo",
    "bu",
    "ka",
    "ke",
    "ki",
    "ko",
    "ku",
    "la",
    "le",
    "li",
    "lo",
    "lu",
    "ma",
    "me",
    "mi",
    "mo",
    "mu",
    "na",
    "ne",
    "ni",
    "no",
    "nu",
    "ra",
    "re",
    "ri",
    "ro",
    "ru",
    "sa",
    "se",
    "si",
    "so",
    "su",
    "ta",
    "te",
    "ti",
    "to",
    "tu",
    "th",
    "st",
    "pr",
    "tr",
    "ch",
]
EXTRAS = ["=", "+", "-", "$x$", "$\\frac{1}{2}$", "\\cdot", "(a+b)^2", "so,", "wait,", "Hmm."]


def vocabulary(rng: np.random.Generator, size: int = 30_000) -> np.ndarray:
    lengths = rng.integers(1, 5, size)
    words = ["".join(rng.choice(SYLLABLES, n)) for n in lengths]
    return np.array(words + EXTRAS, dtype=object)


def text(rng: np.random.Generator, vocab: np.ndarray, weights: np.ndarray, chars: int) -> str:
    words = vocab[rng.choice(len(vocab), size=chars // 5, p=weights)]
    numbers = rng.random(len(words)) < 0.12
    words[numbers] = rng.integers(0, 100_000, int(numbers.sum())).astype(str)
    out = " ".join(words)
    return out[:chars]


def make_rows(n: int, seed: int) -> tuple[list[dict], dict[str, set[int]]]:
    """Rows, and the row numbers of each planted kind (exact, near, benchmark)."""
    rng = np.random.default_rng(seed)
    vocab = vocabulary(rng)
    ranks = np.arange(1, len(vocab) + 1)
    weights = 1 / ranks**1.05
    weights /= weights.sum()
    with (ROOT.parent / "shared" / "benchmarks" / "math500.jsonl").open() as fh:
        math500 = [json.loads(line)["problem"] for line in fh]
    rows: list[dict] = []
    planted: dict[str, set[int]] = {"exact": set(), "near": set(), "benchmark": set()}
    for i in range(n):
        kind = rng.random()
        if i > 100 and kind < 0.04:
            row = dict(rows[int(rng.integers(0, i - 1))])
            row["think"] = row["think"].replace(" ", "  ", 3) + "\n"
            planted["exact"].add(i)
        elif i > 100 and kind < 0.08:
            row = dict(rows[int(rng.integers(0, i - 1))])
            words = row["think"].split(" ")
            edits = max(1, len(words) * int(rng.integers(5, 11)) // 1000)  # Jaccard ~0.9-0.95
            for j in rng.choice(len(words), edits, replace=False):
                words[j] = "edited"
            row["think"] = " ".join(words)
            planted["near"].add(i)
        else:
            problem = text(rng, vocab, weights, int(rng.integers(100, 600)))
            if kind > 0.99:  # a short problem (under 8 words) only matches whole
                leaked = math500[int(rng.integers(0, 500))]
                problem = leaked if len(leaked.split()) < 12 else "Solve this: " + leaked
                planted["benchmark"].add(i)
            answer = str(int(rng.integers(0, 1000)))
            think = text(rng, vocab, weights, int(rng.integers(2000, 8000)))
            row = {"problem": problem, "think": think, "answer": answer, "reference": answer}
        rows.append(row)
    return rows, planted


def datasketch_rate(rows: list[dict]) -> float:
    """Docs per CPU second of datasketch's MinHash alone on the same texts, as a yardstick for
    this machine's speed (the 10k target was set against text-dedup's ~5.8k docs/s)."""
    from datasketch import MinHash

    texts = [r["problem"] + "\n" + r["think"] for r in rows]
    cpu = time.process_time()
    shingles = []
    for text in texts:
        words = text.lower().split()
        shingles.append([" ".join(words[i : i + 5]).encode() for i in range(len(words) - 4)])
    MinHash.bulk(shingles, num_perm=128)
    return len(texts) / (time.process_time() - cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the fastest counts")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    # As the studio's worker runs (r1studio/settings.py): jemalloc, not mimalloc's huge pages.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    import pyarrow as pa

    from pipeline.curation import apply_operations

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    t0 = time.perf_counter()
    rows, planted = make_rows(args.rows, args.seed)
    table = pa.Table.from_pylist(rows)
    chars = sum(len(r["think"]) for r in rows) / len(rows)
    print(
        f"{args.rows:,} rows, reasoning {chars:,.0f} characters on average "
        f"(made in {time.perf_counter() - t0:.1f} s)"
    )

    operations = [{"op": "exact_dedup"}, {"op": "near_dedup"}, {"op": "decontaminate"}]
    apply_operations([table.slice(0, 100)], operations)  # imports, first reads of the files
    setup = time.process_time()
    apply_operations([], operations, schema=table.schema)  # build the filters, no rows
    setup = time.process_time() - setup
    runs = []
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = apply_operations(table.to_batches(max_chunksize=8192), operations)
        runs.append((time.process_time() - cpu - setup, time.perf_counter() - wall))
    cpu, wall = min(runs)

    rate = args.rows / cpu
    print(
        f"dedup + decontamination: {cpu:.2f} CPU s ({wall:.2f} wall s), best of {args.repeat}, "
        f"after {setup:.2f} CPU s building the filters (benchmark index): "
        f"{rate:,.0f} rows per CPU second"
    )
    for step in result.funnel:
        print(f"  {step['step']:<14} {step['rows_in']:>9,} in {step['dropped']:>8,} dropped")
    reference = datasketch_rate(rows[:2000])
    print(
        f"  for scale, on this machine now: datasketch's MinHash.bulk alone (word 5-gram "
        f"shingles, 128 permutations, no LSH) {reference:,.0f} docs per CPU second; "
        f"this is {rate / reference:.1f}x that, with exact dedup and decontamination too"
    )
    dropped = result.dropped.to_pylist()
    by_reason = {step["step"]: set() for step in result.funnel}
    for row in dropped:
        by_reason[row["reason"]].add(row["input_row"])
    all_dropped = set().union(*by_reason.values())
    planted_all = set().union(*planted.values())
    near_found = len(planted["near"] & all_dropped) / max(len(planted["near"]), 1)
    false = len(all_dropped - planted_all) / (args.rows - len(planted_all))
    print(
        f"  found: exact {len(planted['exact'] & by_reason['exact_dedup']):,} of "
        f"{len(planted['exact']):,}, near {near_found:.1%} of {len(planted['near']):,}, "
        f"benchmark {len(planted['benchmark'] & by_reason['decontaminate']):,} of "
        f"{len(planted['benchmark']):,}; other rows dropped {false:.3%}"
    )
    return verdict(
        [
            (
                f"{rate:,.0f} rows per CPU second >= {MIN_ROWS_PER_CPU_S:,}",
                rate >= MIN_ROWS_PER_CPU_S,
            ),
            ("every exact repeat found", planted["exact"] <= by_reason["exact_dedup"]),
            (
                f"near repeats found {near_found:.1%} >= {MIN_NEAR_RECALL:.0%}",
                near_found >= MIN_NEAR_RECALL,
            ),
            ("every benchmark copy found", planted["benchmark"] <= by_reason["decontaminate"]),
            (f"other rows dropped {false:.3%} <= {MAX_FALSE_DROPS:.1%}", false <= MAX_FALSE_DROPS),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
