"""Many people watching a live run: the run page and its metrics JSON while the run trains.

For each database, in a fresh interpreter on a fresh database (a temp SQLite file by default;
with `--db postgres` a database `r1studio_bench_load` created and dropped on `--pg-url`'s
server, `--database-url` is the same option):

1. a running GRPO run with `--series` series x `--steps` steps of metrics, a stdout/stderr
   log and a few checkpoints, stored through the supervisor's ingest path (`events_ingest`);
2. the real web server, uvicorn as `manage.py studio` starts it (`web_argv`; `--workers`
   sets WEB_CONCURRENCY's processes), on a free loopback port;
3. a training thread that keeps ingesting one step of every series (plus a progress event)
   every `--step-seconds`, as the supervisor does while the run trains;
4. `--clients` viewers, each with a session of its own, in a process of their own, that load
   the run page once and then every `--interval` seconds poll it as the page does (htmx's
   `HX-Request` for its live part) and fetch the whole metrics JSON its charts load
   (`/runs/<id>/metrics.json?max_points=600`; the page itself then follows the live stream),
   for `--seconds` seconds and at most `--max-requests-per-client` requests each, only to
   127.0.0.1.

Prints p50 / p95 / max and the errors per endpoint, then each target PASS or FAIL: p95 <=
`--target-ms` (250 ms) and no error. Exits 1 when one fails.

    .venv/bin/python bench/load.py [--db sqlite|postgres|both] [--clients 50] [--seconds 20]
        [--interval 2] [--workers N] [--pg-url postgres://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from _checks import verdict
from _db import PG_URL, ROOT, django_setup, run_on_databases

BENCH_DB = "r1studio_bench_load"
SERIES = [
    "reward", "reward_std", "frac_reward_zero_std", "rewards/accuracy/mean",
    "rewards/accuracy/std", "rewards/format/mean", "rewards/format/std",
    "completions/mean_length", "completions/min_length", "completions/max_length",
    "completions/clipped_ratio", "kl", "entropy", "clip_ratio/low_mean", "clip_ratio/high_mean",
    "clip_ratio/region_mean", "loss", "grad_norm", "learning_rate", "num_tokens",
]  # fmt: skip
MAX_POINTS = 600  # what charts.js asks for on a ~1200 px wide grid


class Events:
    """The supervisor's side of the run: events stored through `events_ingest`, in order."""

    def __init__(self, run_id: int, names: list[str], offset: int = 0) -> None:
        self.run_id = run_id
        self.names = names
        self.offset = offset
        self.rng = random.Random(3)

    def step_events(self, step: int, total: int) -> list[dict]:
        values = {name: self.rng.random() for name in self.names}
        return [
            {"type": "metrics", "time": time.time(), "step": step, "values": values},
            {"type": "progress", "time": time.time(), "step": step, "total_steps": total},
        ]

    def ingest(self, events: list[dict]) -> None:
        from r1studio.runs.ingest import events_ingest

        size = sum(len(json.dumps(e)) + 1 for e in events)
        payload = events_ingest(
            run_id=self.run_id,
            events=events,
            start_offset=self.offset,
            end_offset=self.offset + size,
        )
        assert payload is not None, "the run's events_offset moved under the bench"
        self.offset += size


def make_run(user: object, names: list[str], steps: int, total: int) -> tuple[object, Events]:
    """A running GRPO run with `steps` steps of `names`, logs and checkpoints on disk."""
    from django.conf import settings
    from django.utils import timezone

    from pipeline.config import STAGE_MODELS
    from r1studio.runs.models import Checkpoint, Run

    run = Run.objects.create(
        name="r1-zero live",
        owner=user,
        kind="grpo",
        config=STAGE_MODELS["grpo"]().model_dump(mode="json"),
        status="running",
        worker="celery@bench",
        pid=os.getpid(),
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )
    run_dir = Path(settings.R1STUDIO_DATA_DIR) / "runs" / str(run.pk)
    (run_dir / "checkpoints").mkdir(parents=True)
    line = "step {}: loss 0.1234 reward 1.25 kl 0.0012 lr 1e-06 | generating 16 completions\n"
    (run_dir / "stdout.log").write_text("".join(line.format(i) for i in range(2000)))
    (run_dir / "stderr.log").write_text("warnings: none of interest\n" * 300)
    for step in range(500, steps + 1, 500):
        path = run_dir / "checkpoints" / f"checkpoint-{step}"
        path.mkdir()
        Checkpoint.objects.create(run=run, step=step, path=str(path))
    Run.objects.filter(pk=run.pk).update(run_dir=str(run_dir))
    events = Events(run.pk, names)
    batch: list[dict] = []
    for step in range(1, steps + 1):
        batch += events.step_events(step, total)
        if len(batch) >= 400:
            events.ingest(batch)
            batch = []
    if batch:
        events.ingest(batch)
    run.refresh_from_db()
    return run, events


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, log: Path, workers: int | None) -> subprocess.Popen:
    """uvicorn with `manage.py studio`'s arguments, on this child's database."""
    from r1studio.core.launcher import child_env, web_argv

    env = child_env({"DJANGO_SETTINGS_MODULE": "r1studio.settings"})
    argv = web_argv(host="127.0.0.1", port=port)
    if workers:
        argv += ["--workers", str(workers)]
    with log.open("wb") as out:
        server = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited ({server.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return server
        except urllib.error.HTTPError:
            return server  # 503 without Redis: the server is up
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not answer within 60 s")


def train(events: Events, first_step: int, total: int, every: float, stop: threading.Event):
    """The training thread: one step of every series each `every` seconds until `stop`."""
    from django.db import connection

    ingested: list[float] = []
    step = first_step
    try:
        while not stop.wait(every):
            t0 = time.perf_counter()
            events.ingest(events.step_events(step, total))
            ingested.append(time.perf_counter() - t0)
            step += 1
    finally:
        connection.close()
    return ingested


class Viewer(threading.Thread):
    """One browser tab on the run page: load the page, then the charts' JSON, every interval."""

    def __init__(
        self,
        port: int,
        cookie: str,
        urls: dict[str, str],
        until: float,
        interval: float,
        max_requests: int,
    ):
        super().__init__(daemon=True)
        self.port, self.cookie, self.urls, self.until = port, cookie, urls, until
        self.interval, self.max_requests = interval, max_requests
        self.samples: dict[str, list[float]] = {name: [] for name in urls}
        self.errors: dict[str, list[str]] = {name: [] for name in urls}
        self.delay = random.uniform(0, interval)
        self.page_loaded = False  # the run page loaded whole once: polled from then on

    def _get(self, conn: http.client.HTTPConnection, url: str, poll: bool) -> tuple[int, float]:
        headers = {"Cookie": self.cookie, "Host": "127.0.0.1"}
        if poll:
            headers["HX-Request"] = "true"  # as htmx sends it: the page's live part only
        t0 = time.perf_counter()
        conn.request("GET", url, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - t0

    def run(self) -> None:
        time.sleep(self.delay)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = 0
        while time.monotonic() < self.until and sent < self.max_requests:
            started = time.monotonic()
            for name, url in self.urls.items():
                sent += 1
                try:
                    # The run page is loaded once, then polled as the page polls itself.
                    poll = name == "run page" and self.page_loaded
                    status, seconds = self._get(conn, url, poll=poll)
                except (OSError, http.client.HTTPException) as exc:
                    self.errors[name].append(repr(exc))
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                    continue
                self.samples[name].append(seconds)
                self.page_loaded = self.page_loaded or name == "run page"
                if status != 200:
                    self.errors[name].append(f"HTTP {status}")
            time.sleep(max(0.0, self.interval - (time.monotonic() - started)))
        conn.close()


def watch(
    port: int,
    cookies: list[str],
    urls: dict[str, str],
    seconds: float,
    interval: float,
    max_requests: int,
) -> tuple[dict[str, list[float]], dict[str, list[str]]]:
    """A viewer per cookie for `seconds`; ({endpoint: [seconds]}, {endpoint: [error]}).

    Runs in a process of its own, so that the training thread never holds up a viewer's clock.
    """
    until = time.monotonic() + seconds
    viewers = [Viewer(port, c, urls, until, interval, max_requests) for c in cookies]
    for viewer in viewers:
        viewer.start()
    for viewer in viewers:
        viewer.join(seconds + 60)
    samples = {name: [s for v in viewers for s in v.samples[name]] for name in urls}
    errors = {name: [e for v in viewers for e in v.errors[name]] for name in urls}
    return samples, errors


def sessions(user: object, n: int) -> list[str]:
    """`n` signed-in sessions of `user`, as Cookie header values."""
    from django.conf import settings
    from django.test import Client

    cookies = []
    for _ in range(n):
        client = Client()
        client.force_login(user)
        cookies.append(
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
    return cookies


def queries_per_request(user: object, urls: dict[str, str]) -> dict[str, int]:
    """How many SQL queries each endpoint runs (in this process, through the test client)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    out = {}
    for name, url in urls.items():
        client.get(url)  # warm
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200, url
        out[name] = len(queries)
    return out


def child(label: str, args: argparse.Namespace) -> int:
    user = django_setup()
    from django.conf import settings
    from django.db import connection

    print(f"\n== {label}")
    t0 = time.perf_counter()
    names = SERIES[: args.series]
    total = args.steps * 10
    run, events = make_run(user, names, args.steps, total)
    print(
        f"run #{run.pk}: {len(names)} series x {args.steps:,} steps ingested in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    urls = {
        "run page": f"/runs/{run.pk}/",
        "metrics JSON": f"/runs/{run.pk}/metrics.json?max_points={MAX_POINTS}",
    }
    print(
        "queries per request: "
        + ", ".join(f"{k} {v}" for k, v in queries_per_request(user, urls).items())
    )
    cookies = sessions(user, args.clients)
    connection.close()  # the server and the training thread open their own

    port = free_port()
    log = Path(settings.R1STUDIO_DATA_DIR) / "uvicorn.log"
    server = start_server(port, log, args.workers)
    stop = threading.Event()
    ingest_times: list[float] = []
    trainer = threading.Thread(
        target=lambda: ingest_times.extend(
            train(events, args.steps + 1, total, args.step_seconds, stop)
        ),
        daemon=True,
    )
    viewers = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        trainer.start()
        watching = viewers.submit(
            watch,
            port,
            cookies,
            urls,
            args.seconds,
            args.interval,
            args.max_requests_per_client,
        )
        samples, errors = watching.result(timeout=args.seconds + 120)
    finally:
        viewers.shutdown(cancel_futures=True)
        stop.set()
        trainer.join(30)
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()

    print(
        f"{args.clients} viewers every {args.interval:g} s for {args.seconds:g} s while the run "
        f"trains ({len(ingest_times)} steps ingested, one every {args.step_seconds:g} s):"
    )
    checks = []
    for name in urls:
        times = sorted(samples[name])
        if errors[name]:
            print(f"  {name}: {len(errors[name])} errors, the first: {errors[name][:3]}")
        if len(times) < 2:
            checks.append((f"{name}: answers", False))
            continue
        cuts = statistics.quantiles(times, n=100, method="inclusive")
        p50, p95, top = cuts[49] * 1000, cuts[94] * 1000, times[-1] * 1000
        print(
            f"  {name:<13} {len(times):5d} requests  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  "
            f"max {top:6.1f} ms  errors {len(errors[name])}"
        )
        checks.append((f"{name}: p95 <= {args.target_ms:g} ms", p95 <= args.target_ms))
        checks.append((f"{name}: no error", not errors[name]))
    if ingest_times:
        p50 = statistics.median(ingest_times) * 1000
        print(f"  training ingest: p50 {p50:.1f} ms, max {max(ingest_times) * 1000:.1f} ms")
    status = verdict(checks, f"{label} targets")
    if status and log.exists():
        print("server log (tail):\n" + log.read_text()[-2000:])
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--pg-url", "--database-url", dest="pg_url", default=PG_URL)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    parser.add_argument("--max-requests-per-client", type=int, default=200)
    parser.add_argument("--series", type=int, default=len(SERIES))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--step-seconds", type=float, default=0.5)
    parser.add_argument("--target-ms", type=float, default=250.0)
    parser.add_argument(
        "--workers", type=int, help="uvicorn processes (default: as `studio`: WEB_CONCURRENCY or 1)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args)
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # not a line per sign-in of each viewer
    child_args = _without_option(sys.argv[1:], "--db")
    return run_on_databases(__file__, args.db, args.pg_url, BENCH_DB, child_args)


def _without_option(argv: list[str], option: str) -> list[str]:
    """`argv` less `option` and its value (the child gets every other option as given)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


if __name__ == "__main__":
    sys.exit(main())
