"""The Ray Jobs client the watcher uses never waits forever on a cluster that does not answer.

A real TCP server that accepts the connection and never replies stands in for a hung dashboard;
no Ray head is needed. Skipped only when `ray` cannot be imported."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

pytest.importorskip("ray.job_submission", reason="`ray` is not installed (pip install -e '.[ray]')")

from r1studio.runs import ray_executor  # noqa: E402
from r1studio.runs.ray_executor import ClusterAway, ray_client  # noqa: E402


@pytest.fixture
def silent_server() -> Iterator[str]:
    """An address whose server accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_dashboard_that_never_answers_is_a_cluster_away_not_a_hang(silent_server, monkeypatch):
    monkeypatch.setattr(ray_executor, "RAY_HTTP_TIMEOUT_S", (1.0, 1.0))
    with pytest.raises(ClusterAway, match="does not answer"):
        ray_client(silent_server)
