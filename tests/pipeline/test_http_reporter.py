"""HttpReporter: batches, retries, spools while the studio is away, catches up in order, and
never sends an event twice, against a small HTTP server that keeps the studio's contract
(sequence numbers, 409 with `expected_seq`) and can misbehave on demand. The real studio is
exercised end to end in tests/studio/runs/test_external_script.py."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipeline.http_reporter import HttpReporter
from tests.conftest import wait_for

TOKEN = "r1r_test"


class Studio:
    """Stores events by sequence number like r1studio.runs.remote; `faults` injects failures:
    "500" answers an error, "drop" stores the batch and hangs up before answering."""

    def __init__(self, port: int):
        self.port = port
        self.events: list[dict] = []
        self.faults: list[str] = []
        self.status = "running"
        self.cancel_requested = False
        self.posts = 0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Studio:
        studio = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, answer = studio.handle(self.path, self.headers, body)
                if status == 0:
                    self.close_connection = True  # hang up without an answer
                    return
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, dict]:
        with self.lock:
            self.posts += 1
            if not re.fullmatch(r"/api/runs/7/events", path):
                return 404, {"detail": "Not Found"}
            if headers["Authorization"] != f"Bearer {TOKEN}":
                return 401, {"detail": "Unauthorized"}
            fault = self.faults.pop(0) if self.faults else ""
            if fault == "500":
                return 500, {"detail": "boom"}
            data = json.loads(body)
            seq, events = data["seq"], data["events"]
            expected = len(self.events)
            if self.status in ("finished", "failed", "cancelled") and seq + len(events) > expected:
                return 409, {"detail": "ended", "expected_seq": expected, "status": self.status}
            if seq > expected:
                return 409, {"detail": "gap", "expected_seq": expected, "status": self.status}
            self.events.extend(events[expected - seq :])
            if fault == "drop":
                return 0, {}
            answer = {
                "stored": max(0, seq + len(events) - expected),
                "next_seq": len(self.events),
                "status": self.status,
                "cancel_requested": self.cancel_requested,
            }
            return 200, answer

    def steps(self) -> list[int]:
        return [e["step"] for e in self.events if e["type"] == "metrics"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def studio() -> Iterator[Studio]:
    server = Studio(free_port())
    yield server
    server.stop()


def reporter_for(studio: Studio, run_dir: Path, **kwargs: Any) -> HttpReporter:
    kwargs.setdefault("batch_seconds", 0.05)
    return HttpReporter(run_dir, url=studio.url, run_id=7, token=TOKEN, **kwargs)


def test_it_sends_every_event_once_in_batches(studio, tmp_path):
    studio.start()
    reporter = reporter_for(studio, tmp_path, batch_events=100)
    reporter.status("running", total_steps=250)
    for step in range(1, 251):
        reporter.metrics(step, {"reward": step / 250, "loss": None})
    assert reporter.close(timeout=30)
    assert studio.steps() == list(range(1, 251))
    assert studio.events[0] == {**studio.events[0], "type": "status", "state": "running"}
    assert studio.posts < 30  # batched, not one request per event
    # The local copy is the same events.jsonl a JsonlReporter writes.
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == studio.events


def test_it_spools_while_the_studio_is_down_and_catches_up_in_order(studio, tmp_path):
    reporter = reporter_for(studio, tmp_path, batch_events=10)
    for step in range(1, 41):
        reporter.metrics(step, {"reward": 0.1})
    wait_for(lambda: reporter.pending == 40)  # tried, nothing taken
    studio.start()
    for step in range(41, 61):
        reporter.metrics(step, {"reward": 0.2})
    assert reporter.close(timeout=60)
    assert studio.steps() == list(range(1, 61))


def test_a_lost_answer_or_a_server_error_never_duplicates_an_event(studio, tmp_path):
    studio.start()
    studio.faults = ["drop", "500", "drop", "", "500"]
    reporter = reporter_for(studio, tmp_path, batch_events=5)
    for step in range(1, 31):
        reporter.metrics(step, {"reward": 0.0})
    assert reporter.close(timeout=60)
    assert studio.steps() == list(range(1, 31))


def test_a_create_whose_answer_was_lost_is_retried_with_the_same_key(studio, tmp_path):
    studio.start()
    keys: list[str] = []

    def create_run(client_key: str) -> tuple[int, str]:
        keys.append(client_key)
        if len(keys) == 1:
            raise OSError("connection reset")  # the studio made the run; the answer was lost
        return 7, TOKEN

    reporter = HttpReporter(
        tmp_path, url=studio.url, token="r1u_user", create_run=create_run, batch_seconds=0.05
    )
    reporter.metrics(1, {"reward": 0.0})
    assert reporter.close(timeout=30)
    assert len(keys) == 2 and keys[0] == keys[1] and len(keys[0]) == 32
    assert (tmp_path / "run.key").read_text().strip() == keys[0]
    assert studio.steps() == [1]


def test_it_resends_from_where_the_studio_asks(studio, tmp_path):
    studio.start()
    reporter = reporter_for(studio, tmp_path, batch_events=5)
    for step in range(1, 11):
        reporter.metrics(step, {"reward": 0.0})
    wait_for(lambda: reporter.pending == 0)
    with studio.lock:
        del studio.events[7:]  # the studio lost its last events (a restored database)
    for step in range(11, 16):
        reporter.metrics(step, {"reward": 0.0})
    assert reporter.close(timeout=30)
    assert studio.steps() == list(range(1, 16))


def test_a_reporter_on_the_same_folder_sends_what_the_last_one_could_not(studio, tmp_path):
    first = reporter_for(studio, tmp_path)
    for step in range(1, 11):
        first.metrics(step, {"reward": 0.0})
    assert first.close(timeout=0.5) is False  # the studio is away: kept in the spool
    studio.start()
    second = reporter_for(studio, tmp_path)
    for step in range(11, 16):
        second.metrics(step, {"reward": 0.0})
    assert second.close(timeout=30)
    assert studio.steps() == list(range(1, 16))
    third = reporter_for(studio, tmp_path)  # everything acknowledged: nothing sent again
    assert third.close(timeout=30) and studio.steps() == list(range(1, 16))


def test_it_hears_a_cancel_and_stops_sending_to_an_ended_run(studio, tmp_path):
    studio.start()
    reporter = reporter_for(studio, tmp_path)
    studio.cancel_requested = True
    reporter.metrics(1, {"reward": 0.0})
    wait_for(lambda: reporter.cancel_requested)
    studio.status = "cancelled"
    reporter.metrics(2, {"reward": 0.0})
    wait_for(lambda: reporter.refused)
    assert "ended" in reporter.refused
    assert reporter.close(timeout=5) is False and studio.steps() == [1]


def test_a_heartbeat_goes_out_when_nothing_happens(studio, tmp_path):
    studio.start()
    reporter = reporter_for(studio, tmp_path, heartbeat_seconds=0.2)
    wait_for(lambda: studio.posts >= 2)
    assert studio.events == [] and reporter.close(timeout=5)


def test_a_wrong_token_is_refused_for_good(studio, tmp_path):
    studio.start()
    reporter = HttpReporter(tmp_path, url=studio.url, run_id=7, token="r1r_wrong")
    reporter.metrics(1, {"reward": 0.0})
    wait_for(lambda: reporter.refused)
    assert "401" in reporter.refused
    reporter.close(timeout=1)
