"""Fuzz the JSON API from its own OpenAPI schema: whatever a client sends, never a 500.

Schemathesis generates requests for every operation (valid and invalid parameters and bodies,
odd strings, huge numbers), sends them to the WSGI app in this process (no network) with a
real API token of a researcher who owns a few runs, and checks `not_a_server_error`. The
number of examples per operation is bounded so the whole file stays a few seconds long;
R1STUDIO_FUZZ_EXAMPLES raises it for a longer hunt.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from r1studio.api.api import api
from r1studio.api.services import api_token_create
from r1studio.curation.annotation.models import AnnotationItem, AnnotationQueue
from r1studio.curation.annotation.services import lease_next
from r1studio.curation.services import dataset_create, version_write
from r1studio.runs.models import Run, RunStatus
from r1studio.runs.services import run_create

MAX_EXAMPLES = int(os.environ.get("R1STUDIO_FUZZ_EXAMPLES", "25"))

schema = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/"))


@pytest.fixture
def wsgi_app() -> Iterator[WSGIHandler]:
    """The WSGI app, keeping the test's database connection open between requests (as the test
    client does: a real server closes it after each one)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_auth(researcher: Any, data_dir: Any) -> dict[str, Any]:
    """A token of a researcher with runs in a few states; their ids, for the path params."""
    _, token = api_token_create(user=researcher, name="fuzz")
    config = {"kind": "sft", "model": {"path": "org/model"}, "data": {"source": "org/data"}}
    runs = [run_create(user=researcher, name=f"fuzz {i}", config=config) for i in range(3)]
    Run.objects.filter(pk=runs[1].pk).update(status=RunStatus.FAILED)
    Run.objects.filter(pk=runs[2].pk).update(status=RunStatus.RUNNING)
    dataset = dataset_create(user=researcher, name="fuzz")
    rows = pa.Table.from_pylist([{"problem": "1+1?", "think": "1 and 1", "answer": "2"}] * 3)
    version_write(
        dataset=dataset, table=rows, user=researcher, provenance_type="import", provenance={}
    )
    # An annotation queue with the researcher's draft label of its first item.
    queue = AnnotationQueue.objects.create(name="fuzz", created_by=researcher)
    for position in (1, 2, 3):
        data = {"problem": "1+1?", "reference": "2", "think": "1 and 1", "answer": "2"}
        AnnotationItem.objects.create(queue=queue, position=position, data=data)
    _, label = lease_next(queue=queue, user=researcher)
    return {
        "headers": {"Authorization": f"Bearer {token}"},
        "run_ids": [r.pk for r in runs],
        "dataset_id": dataset.pk,
        "queue_id": queue.pk,
        "label_id": label.pk,
    }


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same requests every run: a failure here is not a flake
    suppress_health_check=list(HealthCheck),
)
def test_no_request_gets_a_server_error(case: Any, fuzz_auth: dict, wsgi_app: WSGIHandler):
    run_id = (case.path_parameters or {}).get("run_id")
    if isinstance(run_id, int) and run_id % 2 == 0:
        # Half of the cases address a run that exists, so the handlers behind the 404 run too.
        ids = fuzz_auth["run_ids"]
        case.path_parameters["run_id"] = ids[(run_id // 2) % len(ids)]
    dataset_id = (case.path_parameters or {}).get("dataset_id")
    if isinstance(dataset_id, int) and dataset_id % 2 == 0:
        # Likewise half of the dataset cases name the fuzz dataset and its version 1.
        case.path_parameters["dataset_id"] = fuzz_auth["dataset_id"]
        if "number" in case.path_parameters:
            case.path_parameters["number"] = 1
    for name in ("queue_id", "label_id"):  # half name the fuzz queue and the label
        value = (case.path_parameters or {}).get(name)
        if isinstance(value, int) and value % 2 == 0:
            case.path_parameters[name] = fuzz_auth[name]
    response = case.call(app=wsgi_app, headers=fuzz_auth["headers"])
    case.validate_response(response, checks=[not_a_server_error])
