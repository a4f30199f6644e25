"""HTTP ingest (issue 13): metric points per second into one run, and R1StudioCallback's cost.

For each database, in a fresh interpreter on a fresh database (a temp SQLite file; a PostgreSQL
database `r1studio_bench_ingest_http` created and dropped on `--pg-url`'s server):

1. throughput: an external run (`runs.remote.run_create_external`) and the real web server
   (uvicorn as `manage.py studio` starts it); one client on one keep-alive connection
   (pipeline.http_reporter.StudioClient) posts `--batches` batches of 1,000 `metrics` events of
   25 TRL series each to `POST /api/runs/<id>/events`, one after the other, each answered before
   the next is sent. Printed: points/s (target `MIN_POINTS_PER_S`) and ms per batch; then
   the same points through `HttpReporter` end to end (events written, spooled, sent, closed).
   The stored series are checked to hold every step once.
2. callback overhead (SQLite only, `--grpo-steps` > 0): docs/examples/grpo_script.py trains the
   toy model (`--toy-size`, default the demo's, as `make run` trains it; the test-size model
   runs 60 steps in under 2 s, so the fixed costs of any run, making the run and waiting for
   the last batch at the end, ~30 ms, would weigh more than in any real one) with TRL's
   GRPOTrainer on one thread, `--repeats` times with R1StudioCallback
   reporting to the server and as often without, alternating; printed: each train time, wall
   and CPU, and the overhead in CPU time of the training process, fastest run against fastest
   run (target <= `MAX_CALLBACK_OVERHEAD`; see `callback_overhead`; the medians and wall time
   are printed too, too noisy on a shared machine to judge by).

Each target is printed PASS or FAIL; the script exits 1 when one fails.

    .venv/bin/python bench/ingest_http.py [--db sqlite|postgres|both] [--batches 40]
        [--grpo-steps 60] [--repeats 7] [--toy DIR] [--toy-size demo|test]
        [--pg-url postgres://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from _checks import verdict
from _db import PG_URL, ROOT, django_setup, run_on_databases
from load import _without_option, free_port, start_server
from metrics import TRL_NAMES

BENCH_DB = "r1studio_bench_ingest_http"
MIN_POINTS_PER_S = 100_000
MAX_CALLBACK_OVERHEAD = 0.02
BATCH_EVENTS = 1000
SCRIPT = ROOT / "docs" / "examples" / "grpo_script.py"


def batch_bodies(batches: int) -> list[bytes]:
    """Request bodies as HttpReporter sends them: the events' JSON lines joined."""
    rng = random.Random(5)
    bodies = []
    for b in range(batches):
        events = []
        for i in range(BATCH_EVENTS):
            step = b * BATCH_EVENTS + i + 1
            values = {name: rng.random() for name in TRL_NAMES}
            events.append(
                json.dumps(
                    {"type": "metrics", "time": 1.7e9 + step, "step": step, "values": values}
                )
            )
        bodies.append(b'{"seq":%d,"events":[%s]}' % (b * BATCH_EVENTS, ",".join(events).encode()))
    return bodies


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def throughput(
    url: str, run_id: int, token: str, batches: int, server_pid: int
) -> tuple[float, float, list[float]]:
    """Points/s of `batches` batches posted in sequence (after one warm-up batch), and points
    per CPU second of the server process (what a machine shared with others still tells)."""
    from pipeline.http_reporter import StudioClient

    bodies = batch_bodies(batches + 1)
    client = StudioClient(url, token)
    path = f"/api/runs/{run_id}/events"
    status, answer = client.post(path, bodies[0])  # warm-up: connection, first series rows
    assert status == 200, answer
    per_batch = []
    cpu = _cpu_seconds(server_pid)
    started = time.perf_counter()
    for body in bodies[1:]:
        t0 = time.perf_counter()
        status, answer = client.post(path, body)
        per_batch.append(time.perf_counter() - t0)
        assert status == 200 and answer["stored"] == BATCH_EVENTS, (status, answer)
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds(server_pid) - cpu
    client.close()
    points = batches * BATCH_EVENTS * len(TRL_NAMES)
    return points / elapsed, points / cpu, per_batch


def through_reporter(url: str, run_id: int, token: str, events: int) -> float:
    """Points/s through HttpReporter: written, spooled, sent and acknowledged."""
    from pipeline.http_reporter import HttpReporter

    rng = random.Random(6)
    with tempfile.TemporaryDirectory(prefix="r1studio-bench-spool-") as spool:
        started = time.perf_counter()
        reporter = HttpReporter(spool, url=url, run_id=run_id, token=token)
        for step in range(1, events + 1):
            reporter.metrics(step, {name: rng.random() for name in TRL_NAMES})
        assert reporter.close(timeout=600), "not everything was sent"
        return events * len(TRL_NAMES) / (time.perf_counter() - started)


def train_time(
    toy: Path, steps: int, out: Path, studio: tuple[str, str] | None
) -> tuple[float, float]:
    """Wall and CPU seconds of `trainer.train()` in the example script (the callback reporting
    to the studio when `studio`), on one thread."""
    timings = out / "timings.json"
    argv = [sys.executable, str(SCRIPT), "--toy", str(toy), "--output-dir", str(out / "run")]
    argv += [
        "--steps",
        str(steps),
        "--save-steps",
        str(max(1, steps // 3)),
        "--timings",
        str(timings),
    ]
    if studio is not None:
        argv += ["--url", studio[0], "--token", studio[1], "--run", "bench callback"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the GRPO script failed:\n{done.stderr[-3000:]}")
    figures = json.loads(timings.read_text())
    return float(figures["train_s"]), float(figures["train_cpu_s"])


def callback_overhead(args: argparse.Namespace, url: str, user_token: str) -> float:
    """The callback's cost: the fastest run with it over the fastest without it, in CPU seconds.

    CPU time (the training process's, the sender thread included; one torch thread) is what
    the callback adds on a machine of its own; wall time is printed too, but on a shared
    machine it moves by tens of percent from one run to the next. The same run's CPU time
    moves by ±3% from one try to the next here (other processes' cache and memory traffic, the
    hypervisor), which only ever adds: the fastest of several tries is the estimate of what the
    run itself costs (as `timeit` takes the minimum), where the median of five still moved by
    ±2% between two `make bench` runs. Medians are printed too."""
    toy = Path(args.toy) if args.toy else None
    with tempfile.TemporaryDirectory(prefix="r1studio-bench-grpo-") as tmp:
        if toy is None:
            toy = Path(tmp) / "toy"
            print(f"building the toy model (python -m pipeline toy --size {args.toy_size}) ...")
            subprocess.run(
                [sys.executable, "-m", "pipeline", "toy", str(toy), "--size", args.toy_size],
                cwd=ROOT, check=True, capture_output=True,
            )  # fmt: skip
        alone, reported = [], []
        for i in range(args.repeats):
            # Alternating, so a change of the machine's load hits both alike.
            alone.append(train_time(toy, args.grpo_steps, Path(tmp) / f"a{i}", None))
            with_it = train_time(toy, args.grpo_steps, Path(tmp) / f"r{i}", (url, user_token))
            reported.append(with_it)
            print(
                f"  GRPO {args.grpo_steps} steps: alone {alone[-1][0]:.2f} s wall "
                f"{alone[-1][1]:.2f} s CPU; reporting {with_it[0]:.2f} s wall {with_it[1]:.2f} s CPU"
            )
    cpu = [min(r[1] for r in runs) for runs in (reported, alone)]
    wall = [min(r[0] for r in runs) for runs in (reported, alone)]
    median = [statistics.median(r[1] for r in runs) for runs in (reported, alone)]
    overhead = cpu[0] / cpu[1] - 1
    print(
        f"callback overhead: {overhead:+.1%} CPU (fastest {cpu[0]:.2f} s vs {cpu[1]:.2f} s), "
        f"{wall[0] / wall[1] - 1:+.1%} wall; medians {median[0] / median[1] - 1:+.1%} CPU; "
        f"over {args.repeats} runs each"
    )
    return overhead


def child(label: str, args: argparse.Namespace) -> int:
    user = django_setup()
    from django.conf import settings
    from django.db import connection

    from r1studio.api.services import api_token_create
    from r1studio.metrics.models import MetricSeries
    from r1studio.runs.remote import run_create_external

    print(f"\n== {label}")
    run, token, _ = run_create_external(user=user, name="bench http ingest")
    second, second_token, _ = run_create_external(user=user, name="bench http reporter")
    _, user_token = api_token_create(user=user, name="bench")
    connection.close()  # the server opens its own
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(settings.R1STUDIO_DATA_DIR) / "uvicorn.log"
    server = start_server(port, log, None)
    checks = []
    try:
        load = os.getloadavg()[0]
        rate, per_cpu, per_batch = throughput(url, run.pk, token, args.batches, server.pid)
        p50 = statistics.median(per_batch) * 1000
        print(
            f"HTTP ingest: {rate:,.0f} metric points/s ({args.batches} batches of {BATCH_EVENTS:,} "
            f"events x {len(TRL_NAMES)} series; {p50:.0f} ms per batch, p50); "
            f"{per_cpu:,.0f} points per CPU second of the server; load average {load:.1f} "
            f"on {os.cpu_count()} CPUs"
        )
        checks.append(
            (
                f"{label}: HTTP ingest >= {MIN_POINTS_PER_S:,} points/s ({rate:,.0f})",
                rate >= MIN_POINTS_PER_S,
            )
        )
        series = MetricSeries.objects.get(run=run, name="reward")
        expected = (args.batches + 1) * BATCH_EVENTS
        complete = series.count == expected and series.last_step == expected
        checks.append(
            (f"{label}: every step stored once ({series.count:,} of {expected:,})", complete)
        )
        reporter_rate = through_reporter(
            url, second.pk, second_token, args.batches * BATCH_EVENTS // 4
        )
        print(f"through HttpReporter (write, spool, send, close): {reporter_rate:,.0f} points/s")
        if label == "SQLite" and args.grpo_steps > 0:
            overhead = callback_overhead(args, url, user_token)
            checks.append(
                (
                    f"R1StudioCallback adds <= {MAX_CALLBACK_OVERHEAD:.0%} to a toy GRPO run's CPU time ({overhead:+.1%})",
                    overhead <= MAX_CALLBACK_OVERHEAD,
                )
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    return verdict(checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--pg-url", "--database-url", dest="pg_url", default=PG_URL)
    parser.add_argument("--batches", type=int, default=40, help="batches of 1,000 events timed")
    parser.add_argument("--grpo-steps", type=int, default=60, help="0: skip the callback check")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--toy", default="", help="toy assets folder (default: built once)")
    parser.add_argument("--toy-size", default="demo", choices=["demo", "test"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    return run_on_databases(
        __file__, args.db, args.pg_url, BENCH_DB, _without_option(sys.argv[1:], "--db")
    )


if __name__ == "__main__":
    sys.exit(main())
