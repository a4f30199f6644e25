"""Metric storage on SQLite and PostgreSQL: ingest rate and chart query time on 1M points.

For each database, in a fresh interpreter on a fresh database (a temp SQLite file; a
PostgreSQL database `r1studio_bench_metrics` created and dropped on `--pg-url`'s server):

1. ingest: a GRPO-like run logging 25 series for 40,000 steps (1M points), as the supervisor
   does it: JSONL lines parsed into events, batches of 1,000 events, one transaction each
   through `metrics_ingest`. Printed: points/s from parsed events (target `MIN_POINTS_PER_S`)
   and from the JSON lines (parsing included). Then one series of 1M steps (one value per event,
   the worst case per point) is ingested the same way.
2. chart query on that 1M-point series: `run_metrics_series(max_points=1000)` and the whole
   `GET /runs/<id>/metrics.json?names=reward&max_points=1000` view (middleware, session,
   JSON) through Django's test client; p50/p95 over `--repeat` runs (target p95 <=
   `MAX_CHART_P95_MS`). Also the live stream's catch-up read (`after_step`: the last 100
   points), under the same target.

Each target is printed PASS or FAIL per database; the script exits 1 when one fails.

    .venv/bin/python bench/metrics.py [--db sqlite|postgres|both] [--repeat 50]
        [--pg-url postgres://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from _checks import verdict
from _db import PG_URL, django_setup, percentiles, run_on_databases, timed

BENCH_DB = "r1studio_bench_metrics"
MIN_POINTS_PER_S = 200_000  # ingest of the 25-series run, from parsed events
MAX_CHART_P95_MS = 100.0  # each chart query and the live catch-up read
BATCH_EVENTS = 1000
TRL_NAMES = [
    "reward", "reward_std", "frac_reward_zero_std", "rewards/accuracy/mean",
    "rewards/accuracy/std", "rewards/format/mean", "rewards/format/std", "rewards/tag_count/mean",
    "completions/mean_length", "completions/min_length", "completions/max_length",
    "completions/clipped_ratio", "completions/mean_terminated_length",
    "completions/min_terminated_length", "completions/max_terminated_length", "kl", "entropy",
    "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "loss",
    "grad_norm", "learning_rate", "num_tokens", "epoch",
]  # fmt: skip


def lines_for(names: list[str], steps: int) -> list[bytes]:
    """JSONL lines of `metrics` events, as the pipeline's reporter writes them."""
    import random

    rng = random.Random(7)
    out = []
    for step in range(1, steps + 1):
        values = {name: rng.random() for name in names}
        out.append(
            json.dumps(
                {"type": "metrics", "time": 1.7e9 + step, "step": step, "values": values}
            ).encode()
        )
    return out


def ingest(run: object, lines: list[bytes]) -> tuple[float, float, int]:
    """(seconds from events, seconds from lines, points): batches as the supervisor makes."""
    from r1studio.core.gcpause import gc_paused
    from r1studio.metrics.services import metrics_ingest

    parse = work = 0.0
    points = 0
    for start in range(0, len(lines), BATCH_EVENTS):
        t0 = time.perf_counter()
        events = [json.loads(line) for line in lines[start : start + BATCH_EVENTS]]
        t1 = time.perf_counter()
        with gc_paused():  # as the supervisor's events_ingest stores a batch
            metrics_ingest(run=run, events=events)
        t2 = time.perf_counter()
        parse += t1 - t0
        work += t2 - t1
        points += sum(len(e["values"]) for e in events)
    return work, work + parse, points


def child(label: str, repeat: int) -> int:
    """Runs inside a fresh interpreter whose DATABASE_URL points at an empty database.

    Returns the exit status: 1 when a target was missed.
    """
    user = django_setup()
    from django.test import Client

    from r1studio.metrics.selectors import run_metrics_series
    from r1studio.runs.models import Run

    print(f"\n== {label}")

    run = Run.objects.create(name="grpo-like", owner=user, kind="grpo", status="running")
    lines = lines_for(TRL_NAMES, 40_000)
    work, total, points = ingest(run, lines)
    checks = [
        (f"ingest >= {MIN_POINTS_PER_S:,} points/s", points / work >= MIN_POINTS_PER_S),
    ]
    print(
        f"ingest, {len(TRL_NAMES)} series x 40,000 steps ({points:,} points), "
        f"batches of {BATCH_EVENTS} events:"
    )
    print(f"  {points / work:>12,.0f} points/s from parsed events   ({work:.2f} s)")
    print(f"  {points / total:>12,.0f} points/s from JSONL lines      ({total:.2f} s)")

    long_run = Run.objects.create(name="long", owner=user, kind="grpo", status="running")
    work, total, points = ingest(long_run, lines_for(["reward"], 1_000_000))
    print("ingest, 1 series x 1,000,000 steps (one value per event):")
    print(f"  {points / work:>12,.0f} points/s from parsed events   ({work:.2f} s)")
    print(f"  {points / total:>12,.0f} points/s from JSONL lines      ({total:.2f} s)")

    result = run_metrics_series(run=long_run, name="reward", max_points=1000)
    assert result["total"] == 1_000_000, result["total"]
    print(
        f"chart query on the 1M-point series ({result['shown']} of {result['total']:,} "
        f"points shown), {repeat} runs:"
    )
    for max_points in (1000, 4000):
        p50, p95 = percentiles(
            timed(
                lambda mp=max_points: run_metrics_series(
                    run=long_run, name="reward", max_points=mp
                ),
                repeat,
            )
        )
        print(f"  selector, max_points={max_points:<5}  p50 {p50:6.1f} ms   p95 {p95:6.1f} ms")
        checks.append(_chart_check(f"selector, max_points={max_points}", p95))
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    url = f"/runs/{long_run.pk}/metrics.json?names=reward&max_points=1000"
    assert client.get(url).status_code == 200
    p50, p95 = percentiles(timed(lambda: client.get(url), repeat))
    print(f"  GET metrics.json (whole view)  p50 {p50:6.1f} ms   p95 {p95:6.1f} ms")
    checks.append(_chart_check("GET metrics.json", p95))
    p50, p95 = percentiles(
        timed(lambda: run_metrics_series(run=long_run, name="reward", after_step=999_900), repeat)
    )
    print(f"  live catch-up (after_step)     p50 {p50:6.1f} ms   p95 {p95:6.1f} ms")
    checks.append(_chart_check("live catch-up", p95))
    return verdict(checks, f"{label} targets")


def _chart_check(name: str, p95: float) -> tuple[str, bool]:
    return f"{name} p95 <= {MAX_CHART_P95_MS:.0f} ms", p95 <= MAX_CHART_P95_MS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.repeat)
    child_args = ["--repeat", str(args.repeat)]
    return run_on_databases(__file__, args.db, args.pg_url, BENCH_DB, child_args)


if __name__ == "__main__":
    sys.exit(main())
