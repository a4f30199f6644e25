"""Trace storage on SQLite and PostgreSQL: the filtered page and word search over 1M traces.

For each database, in a fresh interpreter on a fresh database (a temp SQLite file; a
PostgreSQL database `r1studio_bench_traces` created and dropped on `--pg-url`'s server):

1. ingest: a GRPO run reporting 16 samples a step for 62,500 steps (1M traces), through
   `traces_ingest` in batches of 64 `samples` events (the supervisor's batches), plus a second
   small run; printed as traces/s (no target: the pipeline reports a few dozen a step).
2. the trace browser's query, `traces_page(...)`, with the filters people combine (run, step
   range, reward, correct/incorrect, a cursor deep in the run, all runs) and the whole
   `GET /traces/?...` view through Django's test client; p50/p95 over `--repeat` runs.
3. the word search (`q`, r1studio/traces/search.py: FTS5 on SQLite, a GIN-indexed tsvector on
   PostgreSQL): a phrase in 10% of the traces, a word in none, a number in 3%, two words,
   combined with the other filters and a cursor, across all runs, and the whole view.

Targets: p95 <= `--target-ms` (50 ms) for every filtered page and word search, and
p95 <= `--view-target-ms` (150 ms) for the whole view (rendering 50 rows dominates it), each
printed PASS or FAIL per database; the script exits 1 when one fails. A prefix search
(`carr*`) is printed apart, outside the targets: SQLite's FTS5 merges the postings of every
word with the prefix before it returns a row, so a prefix shared by most traces costs
~100 ms per million of them.

    .venv/bin/python bench/traces.py [--db sqlite|postgres|both] [--traces 1000000]
        [--repeat 30] [--target-ms 50] [--view-target-ms 150]
        [--pg-url postgres://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from _checks import verdict
from _db import PG_URL, django_setup, percentiles, run_on_databases, timed

BENCH_DB = "r1studio_bench_traces"
PER_STEP = 16
BATCH_EVENTS = 64
WORDS = [
    "so",
    "the",
    "sum",
    "is",
    "then",
    "we",
    "add",
    "carry",
    "the",
    "digits",
    "check",
    "again",
    "result",
    "equals",
]


def samples_event(rng: random.Random, step: int) -> dict:
    """A `samples` event of PER_STEP completions: 4 prompts x 4 generations."""
    items = []
    for _ in range(PER_STEP // 4):
        a, b = rng.randrange(100), rng.randrange(100)
        prompt = f"Solve the problem and put the answer in <answer> tags. What is {a} + {b}?"
        for _ in range(4):
            correct = rng.random() < min(0.9, 0.2 + step / 80_000)
            answer = a + b if correct else a + b + rng.randrange(1, 9)
            thought = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(20, 60)))
            if rng.random() < 0.1:
                thought += " wait, let me re-check"
            fmt = 1.0 if rng.random() < 0.8 else 0.0
            items.append({
                "prompt": prompt,
                "completion": f"<think>{a} + {b}: {thought}</think> <answer>{answer}</answer>",
                "reference": str(a + b),
                "rewards": {"accuracy": float(correct), "format": fmt},
                "reward": float(correct) + fmt,
                "advantage": rng.uniform(-1.5, 1.5),
            })  # fmt: skip
    return {"type": "samples", "time": 1.7e9 + step, "step": step, "items": items}


def ingest(run: object, steps: int, seed: int) -> tuple[int, float]:
    from r1studio.traces.services import traces_ingest

    rng = random.Random(seed)
    stored, spent = 0, 0.0
    for start in range(1, steps + 1, BATCH_EVENTS):
        events = [samples_event(rng, s) for s in range(start, min(start + BATCH_EVENTS, steps + 1))]
        t0 = time.perf_counter()
        stored += traces_ingest(run=run, events=events)
        spent += time.perf_counter() - t0
    return stored, spent


def report(name: str, func: object, repeat: int) -> float:
    """Print p50/p95 of `func` over `repeat` calls; returns p95 in ms."""
    p50, p95 = percentiles(timed(func, repeat))
    print(f"  {name:<44} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms")
    return p95


def child(label: str, traces: int, repeat: int, target_ms: float, view_ms: float) -> int:
    """Runs inside a fresh interpreter whose DATABASE_URL points at an empty database."""
    user = django_setup()
    from django.db import connection
    from django.test import Client

    from r1studio.runs.models import Run
    from r1studio.traces.selectors import traces_page

    print(f"\n== {label}")
    big = Run.objects.create(name="r1-zero", owner=user, kind="grpo", status="running")
    small = Run.objects.create(name="small", owner=user, kind="grpo", status="finished")
    steps = traces // PER_STEP
    stored, spent = ingest(big, steps, seed=1)
    ingest(small, 64, seed=2)
    print(f"ingest: {stored:,} traces in {spent:.1f} s = {stored / spent:,.0f} traces/s")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    mid = steps // 2
    deep_cursor = None
    for _ in range(5):  # five pages into a filtered listing
        _, deep_cursor = traces_page(user=user, run=big, correct=False, after=deep_cursor)
    cases = {
        "run, incorrect": dict(run=big, correct=False),
        "run, steps 40%-60%, reward >= 1": dict(
            run=big, step_min=int(steps * 0.4), step_max=int(steps * 0.6), reward_min=1.0
        ),
        "run, early steps, correct": dict(run=big, step_max=steps // 10, correct=True),
        "run, incorrect, 6th page (cursor)": dict(run=big, correct=False, after=deep_cursor),
        "all runs, reward <= 0.5": dict(reward_max=0.5),
        "run, steps around the middle": dict(run=big, step_min=mid - 10, step_max=mid + 10),
    }

    checks = []

    def check(name: str, func: object, target: float) -> None:
        checks.append((f"{name}: p95 <= {target:g} ms", report(name, func, repeat) <= target))

    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    print(f"filtered traces page (50 rows) over {stored:,} traces, {repeat} runs:")
    for name, filters in cases.items():
        rows, _ = traces_page(user=user, **filters)
        assert rows, name
        check(name, lambda f=filters: traces_page(user=user, **f), target_ms)
    url = (
        f"/traces/?run={big.pk}&step_min={int(steps * 0.4)}&step_max={int(steps * 0.6)}"
        "&correct=no&reward_min=0.5"
    )
    assert client.get(url).status_code == 200
    check("GET /traces/?run&steps&correct&reward", lambda: client.get(url), view_ms)

    deep_cursor = None
    for _ in range(5):
        _, deep_cursor = traces_page(user=user, run=big, q="wait", correct=False, after=deep_cursor)
    searches = {
        "run, q='re-check' (a phrase in 10%)": dict(run=big, q="re-check"),
        "run, q='zebra' (no trace)": dict(run=big, q="zebra"),
        "run, q='97' (3%)": dict(run=big, q="97"),
        "run, q='carry digits'": dict(run=big, q="carry digits"),
        "run, q='97 wait' (0.3%)": dict(run=big, q="97 wait"),
        "run, incorrect, q='wait', 6th page": dict(
            run=big, q="wait", correct=False, after=deep_cursor
        ),
        "run, steps 40%-60%, reward >= 1, q='97'": dict(
            run=big, q="97", step_min=int(steps * 0.4), step_max=int(steps * 0.6), reward_min=1.0
        ),
        "all runs, q='re-check'": dict(q="re-check"),
    }
    print(f"word search (q) over {stored:,} traces, {repeat} runs:")
    for name, filters in searches.items():
        rows, _ = traces_page(user=user, **filters)
        assert rows or "zebra" in name, name
        check(name, lambda f=filters: traces_page(user=user, **f), target_ms)
    url = f"/traces/?run={big.pk}&q=re-check&correct=no"
    assert client.get(url).status_code == 200
    check("GET /traces/?run&q=re-check&correct", lambda: client.get(url), view_ms)
    print("prefix search (not in the target, see the docstring):")
    prefix = dict(run=big, q="carr*")
    report(
        "run, q='carr*' (prefix of a word in ~90%)",
        lambda: traces_page(user=user, **prefix),
        repeat,
    )
    return verdict(checks, f"{label} targets")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--target-ms", type=float, default=50.0)
    parser.add_argument("--view-target-ms", type=float, default=150.0)
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.traces, args.repeat, args.target_ms, args.view_target_ms)
    child_args = ["--traces", str(args.traces), "--repeat", str(args.repeat)]
    child_args += ["--target-ms", str(args.target_ms), "--view-target-ms", str(args.view_target_ms)]
    return run_on_databases(__file__, args.db, args.pg_url, BENCH_DB, child_args)


if __name__ == "__main__":
    sys.exit(main())
