"""Events over HTTP to an R1 Studio: a reporter for runs off the studio's worker disk.

``HttpReporter`` is a ``JsonlReporter`` (same protocol, same event shapes) whose
``<run_dir>/events.jsonl`` is also the spool of a sender thread: every event is appended there
first (flushed, as always), and the thread ships the lines in order, in batches of up to
``batch_events`` events or ``batch_seconds`` old, to ``POST <url>/api/runs/<id>/events`` with the
run's token. Line *n* of the file is event number *n* (``seq``), so the studio stores each event
once whatever is retried: while the studio is unreachable (refused, timeouts, 5xx) the lines pile
up in the file and the thread retries with a capped exponential backoff, then catches up in
order. What was acknowledged is kept in ``events.sent`` next to it, so a script restarted on the
same folder goes on where it stopped. ``close()`` flushes with a bounded wait.

Without a ``run_id``, ``create_run(client_key)`` (e.g. ``create_external_run`` with a user's API
token) is called by the thread once the studio answers, so a script started while the studio is
away trains and spools from its first step; the key, kept in ``run.key`` in the folder, makes a
retried create return the same run.

Standard library only (``http.client``): no Django, nothing to install.

    reporter = HttpReporter("runs/my-grpo", url="http://studio:8000", run_id=12, token="r1r_...")
    reporter.metrics(1, {"reward": 0.5})
    reporter.close()
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline.reporting import JsonlReporter

logger = logging.getLogger("pipeline.http")

ENDED = ("finished", "failed", "cancelled")
MAX_BACKOFF_S = 30.0


class StudioError(RuntimeError):
    """The studio refused a request for good (a bad token, a bad body): retrying cannot help."""


class StudioClient:
    """One keep-alive connection to a studio's JSON API; `post` answers (status, JSON body)."""

    def __init__(self, url: str, token: str, timeout: float = 30.0):
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url: expected http(s)://host[:port], got {url!r}")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.prefix = parts.path
        self.token = token
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = (
                http.client.HTTPSConnection
                if self.scheme == "https"
                else http.client.HTTPConnection
            )
            self._conn = kind(self.host, self.port, timeout=self.timeout)
        return self._conn

    def post(self, path: str, body: bytes | dict) -> tuple[int, Any]:
        """POST JSON; raises OSError (and http.client errors) when the studio is unreachable."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
        }
        conn = self._connection()
        try:
            conn.request("POST", self.prefix + path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.close()  # a fresh connection next time
            raise
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {"detail": raw[:200].decode("utf-8", "replace")}
        return response.status, answer

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def create_external_run(
    url: str,
    user_token: str,
    name: str,
    *,
    kind: str = "grpo",
    config: dict | None = None,
    client_key: str = "",
) -> tuple[int, str]:
    """Create an external run with a user's API token; returns (run id, the run's token).

    With `client_key`, a retry after a lost answer gets the run the first call made."""
    client = StudioClient(url, user_token)
    body = {"name": name, "external": True, "kind": kind, "config": config or {}}
    if client_key:
        body["client_key"] = client_key
    try:
        status, answer = client.post("/api/runs", body)
    finally:
        client.close()
    if status not in (200, 201):
        raise StudioError(f"creating the run failed ({status}): {answer.get('detail', answer)}")
    return int(answer["id"]), str(answer["token"])


def _complete_lines(path: Path, offset: int, max_events: int, max_bytes: int) -> list[bytes]:
    """Up to `max_events` complete lines of `path` after byte `offset` (each with its newline),
    about `max_bytes` at most (always at least one line, however long)."""
    lines: list[bytes] = []
    size = 0
    with open(path, "rb") as fh:
        fh.seek(offset)
        while len(lines) < max_events:
            line = fh.readline()
            if not line.endswith(b"\n"):
                break  # none, or still being written
            if lines and size + len(line) > max_bytes:
                break
            lines.append(line)
            size += len(line)
    return lines


class HttpReporter(JsonlReporter):
    """A JSONL reporter whose file a thread sends to the studio (module docstring)."""

    def __init__(
        self,
        run_dir: str | Path,
        *,
        url: str,
        token: str,
        run_id: int | None = None,
        create_run: Callable[[str], tuple[int, str]] | None = None,
        batch_events: int = 1000,
        batch_seconds: float = 1.0,
        max_batch_bytes: int = 2 * 2**20,
        heartbeat_seconds: float = 30.0,
        timeout: float = 30.0,
    ):
        super().__init__(run_dir)
        if run_id is None and create_run is None:
            raise ValueError("HttpReporter needs a run_id, or create_run to make the run")
        self.run_id = None if run_id is None else int(run_id)
        self.create_run = create_run
        self.url = url
        self.client = StudioClient(url, token, timeout=timeout)
        self.batch_events = batch_events
        self.batch_seconds = batch_seconds
        self.max_batch_bytes = max_batch_bytes
        self.heartbeat_seconds = heartbeat_seconds
        self.cancel_requested = False  # a user asked the run to stop (from the studio's answer)
        self.run_status = ""
        self.refused = ""  # why the studio takes no more of this run's events
        self.sent_path = self.run_dir / "events.sent"
        self._seq, self._offset, self._base = self._load_sent()
        self._written = self._count_lines()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._loop, name="r1studio-sender", daemon=True)
        self._thread.start()

    # --- what the stage writes ----------------------------------------------------------------

    def _write(self, event_type: str, step: int | None = None, **fields: Any) -> None:
        super()._write(event_type, step, **fields)
        self._written += 1
        if self._written - (self._seq - self._base) >= self.batch_events:
            self._wake.set()

    @property
    def pending(self) -> int:
        """Events written but not yet acknowledged by the studio."""
        return max(0, self._written - (self._seq - self._base))

    def close(self, timeout: float = 30.0) -> bool:
        """Send what is left, waiting at most `timeout` seconds; True when the studio has it all.

        What could not be sent stays in events.jsonl (with events.sent saying how far it got):
        a reporter opened on the same folder later sends the rest."""
        self._deadline = time.monotonic() + timeout
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout + 5)
        super().close()
        self.client.close()
        left = self.pending
        if left and not self.refused:
            logger.warning(
                "%s event(s) not sent to the studio yet; they are kept in %s", left, self.path
            )
        return left == 0

    # --- the sender thread --------------------------------------------------------------------

    def _load_sent(self) -> tuple[int, int, int]:
        try:
            seq, offset, base = (int(x) for x in self.sent_path.read_text().split())
        except (OSError, ValueError):
            return 0, 0, 0
        if offset > self.path.stat().st_size:
            return 0, 0, 0  # not this file's record
        return seq, offset, base

    def _save_sent(self) -> None:
        tmp = self.sent_path.with_suffix(".tmp")
        tmp.write_text(f"{self._seq} {self._offset} {self._base}\n")
        tmp.replace(self.sent_path)

    def _count_lines(self) -> int:
        with open(self.path, "rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(2**20), b""))

    def _seek(self, seq: int) -> None:
        """Point the sender at event `seq` (the studio asked for it: it has fewer or more)."""
        index = seq - self._base
        offset = 0
        with open(self.path, "rb") as fh:
            for done in range(max(0, index)):
                line = fh.readline()
                if not line.endswith(b"\n"):
                    # The studio has events this file never held (another spool): number the
                    # file's next lines after them.
                    self._base = seq - done
                    break
                offset += len(line)
        self._seq, self._offset = seq, offset

    def _loop(self) -> None:
        failures = 0
        last_post = time.monotonic()
        while not self.refused:
            closing = self._closing.is_set()
            if closing and time.monotonic() > self._deadline:
                return
            lines = _complete_lines(
                self.path, self._offset, self.batch_events, self.max_batch_bytes
            )
            idle = time.monotonic() - last_post >= self.heartbeat_seconds
            if not lines and not idle:
                if closing:
                    return
                self._wake.wait(self.batch_seconds)
                self._wake.clear()
                continue
            if lines and len(lines) < self.batch_events and not closing and not idle:
                # A part batch: wait for more, at most batch_seconds (woken when it fills).
                if self._wake.wait(self.batch_seconds):
                    self._wake.clear()
                    continue
                lines = _complete_lines(
                    self.path, self._offset, self.batch_events, self.max_batch_bytes
                )
            try:
                if self.run_id is None:
                    self._create()
                self._send(lines)
                failures = 0
                last_post = time.monotonic()
            except (OSError, http.client.HTTPException, _Retry) as exc:
                failures += 1
                pause = min(MAX_BACKOFF_S, 0.5 * 2 ** min(failures - 1, 8)) * random.uniform(
                    0.8, 1.2
                )
                if failures in (1, 5) or failures % 20 == 0:
                    logger.warning(
                        "the studio is unreachable (%s); %s event(s) kept, retrying in %.1f s",
                        exc, self.pending, pause,
                    )  # fmt: skip
                if closing:  # someone waits: look again soon, within the deadline
                    time.sleep(min(pause, 2.0, max(0.0, self._deadline - time.monotonic())))
                else:
                    self._closing.wait(pause)  # close() cuts the pause short
            except StudioError as exc:
                self.refused = str(exc)
                logger.error("the studio refused this run's events: %s", exc)

    def _create(self) -> None:
        """Make the run now that the studio answers (events were spooled meanwhile)."""
        assert self.create_run is not None
        # One key per spool folder, kept before asking: a create whose answer was lost is
        # retried with the same key and gets the same run (never a second one).
        key_path = self.run_dir / "run.key"
        if not key_path.exists():
            key_path.write_text(uuid.uuid4().hex + "\n")
        self.run_id, self.client.token = self.create_run(key_path.read_text().strip())
        (self.run_dir / "run.json").write_text(
            json.dumps({"url": self.url, "run_id": self.run_id}) + "\n"
        )

    def _send(self, lines: list[bytes]) -> None:
        body = b'{"seq":%d,"events":[%s]}' % (self._seq, b",".join(x.rstrip(b"\n") for x in lines))
        status, answer = self.client.post(f"/api/runs/{self.run_id}/events", body)
        if status == 200:
            self.cancel_requested = self.cancel_requested or bool(answer.get("cancel_requested"))
            self.run_status = str(answer.get("status", ""))
            next_seq = int(answer["next_seq"])
            if next_seq == self._seq + len(lines):
                self._seq, self._offset = next_seq, self._offset + sum(len(x) for x in lines)
            else:
                self._seek(next_seq)
            self._save_sent()
        elif status == 409 and "expected_seq" in answer:
            if answer.get("status") in ENDED or int(answer["expected_seq"]) == self._seq:
                raise StudioError(answer.get("detail", "the run has ended"))
            self._seek(int(answer["expected_seq"]))  # a gap (or more than we thought): resend
        elif status == 413 and len(lines) > 1:
            self.max_batch_bytes = max(1024, self.max_batch_bytes // 2)
            raise _Retry("batch over the studio's size limit: smaller batches")
        elif status == 413:
            self._send([self._too_large(lines[0])])  # keeps its number: nothing shifts
        elif status in (429,) or status >= 500:
            raise _Retry(f"HTTP {status}")
        else:
            raise StudioError(f"HTTP {status}: {answer.get('detail', answer)}")

    def _too_large(self, line: bytes) -> bytes:
        try:
            event = json.loads(line)
        except ValueError:
            event = {}
        message = (
            f"a {event.get('type', '?')} event at step {event.get('step', '?')} "
            f"({len(line)} bytes) was too large for the studio; it is only in {self.path}"
        )
        note = {"type": "log", "time": event.get("time", time.time()), "level": "warning"}
        return json.dumps({**note, "message": message}).encode() + b"\n"


class _Retry(Exception):
    """A transient answer (5xx, 429, too large): try again after a pause."""
