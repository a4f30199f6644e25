"""Who may open what: every URL of the URL conf, requested as every role.

The URL patterns are walked from `get_resolver()`, each one filled with the ids of real objects
(runs owned by one researcher, their traces, an eval result, an API token), and requested as:
anonymous, annotator, the owning researcher, another researcher, and an admin. `EXPECT` says,
by URL name, what each of them must get. A URL name missing from `EXPECT` fails the suite, so
a new view is classified the day it lands.

Each view is checked twice: with the owner's *finished* run (researchers share those: another
researcher may read but not change it) and with the owner's *draft* (hidden from everyone but
its owner and admins: another researcher gets a 404 wherever the draft is named).

Views that only take POST get a GET (405 for those who pass the login) and a POST (the refusal
comes before any change, so a wrong answer is caught whatever the view would have done).
Nothing may answer 500.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from r1studio.runs.events import events_dispatch
from tests.studio.traces.conftest import sample

ROLES = ("anonymous", "annotator", "owner", "other", "admin")

# Outcomes, by word, for one role and one request.
OUTCOMES = {
    "OK": lambda r: r.status_code == 200,
    "HEALTH": lambda r: r.status_code in (200, 503),  # 503 when Redis or the DB is down
    "LOGIN": lambda r: r.status_code == 302 and r["Location"].startswith("/accounts/login/"),
    "ADMIN_LOGIN": lambda r: r.status_code == 302 and r["Location"].startswith("/admin/login/"),
    "SIGN_IN": lambda r: (
        r.status_code == 302 and r["Location"].startswith(("/accounts/login/", "/admin/login/"))
    ),
    "REDIRECT": lambda r: r.status_code == 302,
    "DENY": lambda r: r.status_code in (403, 404),
    "401": lambda r: r.status_code == 401,
    "404": lambda r: r.status_code == 404,
    "405": lambda r: r.status_code == 405,
    "ANY": lambda r: r.status_code < 500,  # allowed: the answer depends on the object's state
}


@dataclass(frozen=True)
class Rule:
    """Expected outcomes for (anonymous, annotator, owner, other researcher, admin)."""

    get: str
    post: str | None = None  # also POST, expecting these (views that only take POST)
    run_scoped: bool = False  # names a run: another researcher gets DENY on the owner's draft

    def expected(self, method: str, role: str, subject: str) -> str:
        words = (self.get if method == "GET" else self.post or "").split()
        assert len(words) == len(ROLES), f"{self}: one outcome per role"
        word = words[ROLES.index(role)]
        if subject == "draft" and self.run_scoped and role == "other" and word != "405":
            return "DENY"
        return word


RESEARCHER_PAGE = Rule("LOGIN DENY OK OK OK")
RUN_PAGE = Rule("LOGIN DENY OK OK OK", run_scoped=True)
RUN_OWNER_PAGE = Rule("LOGIN DENY ANY DENY ANY", run_scoped=True)  # only the owner (and admins)
RUN_ACTION = Rule("LOGIN 405 405 405 405", post="LOGIN DENY ANY DENY ANY", run_scoped=True)
RESEARCHER_ACTION = Rule("LOGIN 405 405 405 405", post="LOGIN DENY ANY ANY ANY")
API_LIST = Rule("401 DENY OK OK OK")
API_RUN = Rule("401 DENY OK OK OK", run_scoped=True)
API_RUN_ACTION = Rule("405 405 405 405 405", post="401 DENY ANY DENY ANY", run_scoped=True)

EXPECT: dict[str, Rule] = {
    # Open to everyone: the sign-in page and the load balancers' health check.
    "login": Rule("OK OK OK OK OK"),
    "core:healthz": Rule("HEALTH HEALTH HEALTH HEALTH HEALTH"),
    # Every signed-in user, annotators included.
    "core:dashboard": Rule("LOGIN OK OK OK OK"),
    "logout": Rule("LOGIN 405 405 405 405", post="LOGIN LOGIN LOGIN LOGIN LOGIN"),
    "curation:annotate": Rule("LOGIN OK OK OK OK"),
    # Researcher pages.
    "runs:list": RESEARCHER_PAGE,
    "runs:new": RESEARCHER_PAGE,
    "runs:detail": RUN_PAGE,
    "runs:logs": RUN_PAGE,
    "runs:bundle": RUN_PAGE,
    "runs:compare": Rule("LOGIN DENY REDIRECT REDIRECT REDIRECT"),  # to the compare page
    "runs:tags": RUN_ACTION,
    "runs:edit": RUN_OWNER_PAGE,
    "runs:launch": RUN_ACTION,
    "runs:cancel": RUN_ACTION,
    "runs:resume": RUN_ACTION,
    "runs:retry": RUN_ACTION,
    # Cloning copies a run the user can see into a draft of their own.
    "runs:clone": Rule("LOGIN 405 405 405 405", post="LOGIN DENY ANY ANY ANY", run_scoped=True),
    "metrics:compare": RESEARCHER_PAGE,
    "metrics:series": RUN_PAGE,
    "metrics:export": RUN_PAGE,
    "metrics:stream": RUN_PAGE,
    "traces:list": RESEARCHER_PAGE,
    "traces:export": RESEARCHER_PAGE,
    "traces:detail": RUN_PAGE,
    "traces:group": RUN_PAGE,
    "traces:over_time": RUN_PAGE,
    "curation:datasets": RESEARCHER_PAGE,
    # Datasets are shared by researchers (and admins); annotators get 403 on all of them.
    "curation:dataset_new": RESEARCHER_ACTION,
    "curation:from_traces": RESEARCHER_ACTION,
    "curation:dataset": RESEARCHER_PAGE,
    "curation:diff": RESEARCHER_PAGE,
    "curation:version": RESEARCHER_PAGE,
    "curation:version_jobs": RESEARCHER_PAGE,
    "curation:import": RESEARCHER_PAGE,
    "curation:import_start": RESEARCHER_ACTION,
    "curation:job": RESEARCHER_PAGE,
    "curation:curate": RESEARCHER_PAGE,
    "curation:rows": RESEARCHER_PAGE,
    "curation:row": RESEARCHER_PAGE,
    # Refused for everyone: a run used the matrix's version (back to its page with why).
    "curation:version_delete": Rule(
        "LOGIN 405 405 405 405", post="LOGIN DENY REDIRECT REDIRECT REDIRECT"
    ),
    # The annotation view: the queue's annotators (the matrix's annotator is one) and
    # researchers label; a label's draft, submit and skip are its own annotator's only.
    "curation:label": Rule("LOGIN OK OK OK OK"),
    "curation:label_draft": Rule("LOGIN 405 405 405 405", post="LOGIN ANY DENY DENY DENY"),
    "curation:label_submit": Rule("LOGIN 405 405 405 405", post="LOGIN ANY DENY DENY DENY"),
    "curation:label_skip": Rule("LOGIN 405 405 405 405", post="LOGIN ANY DENY DENY DENY"),
    # Researchers make, review and promote queues; annotators get 403 on all of it.
    "curation:queues": RESEARCHER_PAGE,
    "curation:queue_new": RESEARCHER_PAGE,
    "curation:queue": RESEARCHER_PAGE,
    "curation:review": RESEARCHER_PAGE,
    "curation:review_item": RESEARCHER_PAGE,
    "curation:queue_guidelines": RESEARCHER_ACTION,
    "curation:queue_settings": RESEARCHER_ACTION,
    "curation:queue_gold": RESEARCHER_ACTION,
    "curation:queue_promote": RESEARCHER_ACTION,
    "curation:review_agreeing": RESEARCHER_ACTION,
    "evals:benchmarks": RESEARCHER_PAGE,
    "evals:result": RUN_PAGE,
    "evals:leaderboard": RESEARCHER_PAGE,
    "evals:compare": RESEARCHER_PAGE,  # without ?a=&b=: the picker
    "workers:list": RESEARCHER_PAGE,
    # Lineage: a run's (hidden like the run itself) and a dataset version's (shared).
    "recipes:lineage_run": RUN_PAGE,
    "recipes:lineage_dataset": RESEARCHER_PAGE,
    # Recipes are shared like finished runs; only the owner (and admins) act on one.
    "recipes:list": RESEARCHER_PAGE,
    "recipes:new": RESEARCHER_ACTION,
    "recipes:detail": RESEARCHER_PAGE,
    "recipes:launch": Rule("LOGIN 405 405 405 405", post="LOGIN DENY ANY DENY ANY"),
    "recipes:cancel": Rule("LOGIN 405 405 405 405", post="LOGIN DENY ANY DENY ANY"),
    "recipes:retry": Rule("LOGIN 405 405 405 405", post="LOGIN DENY ANY DENY ANY"),
    # The editor: the owner and admins, on a draft (the matrix's recipe is finished: they are
    # sent back to its page); anyone who sees a recipe may clone it into a draft of their own.
    "recipes:edit": Rule("LOGIN DENY REDIRECT DENY REDIRECT"),
    "recipes:stage_edit": Rule("LOGIN DENY REDIRECT DENY REDIRECT"),
    "recipes:edit_settings": Rule("LOGIN 405 405 405 405", post="LOGIN DENY ANY DENY ANY"),
    "recipes:stage_add": Rule("LOGIN 405 405 405 405", post="LOGIN DENY ANY DENY ANY"),
    "recipes:stage_move": Rule("LOGIN 405 405 405 405", post="LOGIN DENY ANY DENY ANY"),
    "recipes:stage_remove": Rule("LOGIN 405 405 405 405", post="LOGIN DENY ANY DENY ANY"),
    "recipes:stage_gate": Rule("LOGIN 405 405 405 405", post="LOGIN DENY ANY DENY ANY"),
    "recipes:clone": RESEARCHER_ACTION,
    "api:list_recipes": Rule("401 DENY OK OK OK", post="401 DENY ANY ANY ANY"),  # POST creates
    "api:create_recipe": Rule("401 DENY OK OK OK", post="401 DENY ANY ANY ANY"),  # GET lists
    "api:get_recipe": API_LIST,
    "api:launch_recipe": Rule("405 405 405 405 405", post="401 DENY ANY DENY ANY"),
    "api:cancel_recipe": Rule("405 405 405 405 405", post="401 DENY ANY DENY ANY"),
    "api:retry_recipe": Rule("405 405 405 405 405", post="401 DENY ANY DENY ANY"),
    "api:tokens": RESEARCHER_PAGE,
    # A token can be revoked by its owner only (the others get a 404: it is not theirs).
    "api:token_revoke": Rule("LOGIN 405 405 405 405", post="LOGIN DENY REDIRECT DENY DENY"),
    "api:openapi-json": RESEARCHER_PAGE,
    "api:openapi-view": RESEARCHER_PAGE,
    # The JSON API: 401 without a token or session.
    "api:api-root": Rule("404 404 404 404 404"),
    "api:list_runs": API_LIST,
    "api:create_run": Rule("401 DENY OK OK OK", post="401 DENY ANY ANY ANY"),  # GET lists
    "api:get_run": API_RUN,
    "api:run_metrics": API_RUN,
    "api:run_metric_names": API_RUN,
    "api:run_traces": API_RUN,
    "api:launch_run": API_RUN_ACTION,
    "api:cancel_run": API_RUN_ACTION,
    "api:resume_run": API_RUN_ACTION,
    "api:retry_run": API_RUN_ACTION,
    "api:new_run_token": API_RUN_ACTION,  # a worker run has no token: its owner gets 403 too
    # HTTP ingest takes the run's own token only: no session, no user token gets in.
    "api:post_events": Rule("405 405 405 405 405", post="401 401 401 401 401"),
    # The datasets API: researchers and admins; annotators get 403 before the body is read.
    "api:create_dataset": Rule("401 DENY OK OK OK", post="401 DENY ANY ANY ANY"),  # GET lists
    "api:list_datasets": API_LIST,
    "api:get_dataset": API_LIST,
    "api:import_version": Rule("405 405 405 405 405", post="401 DENY ANY ANY ANY"),
    "api:get_dataset_job": API_LIST,
    "api:get_version": API_LIST,
    "api:version_rows": API_LIST,
    "api:export_version": API_LIST,
    "api:curate_version": Rule("405 405 405 405 405", post="401 DENY ANY ANY ANY"),
    # The annotation API: researchers make, read and promote queues (annotators 403); the
    # queue's annotator (the matrix's is assigned) leases its items; labels take PUT only.
    "api:create_queue": Rule("405 405 405 405 405", post="401 DENY ANY ANY ANY"),
    "api:get_queue": API_LIST,
    "api:promote_queue": Rule("405 405 405 405 405", post="401 DENY ANY ANY ANY"),
    "api:next_item": Rule("405 405 405 405 405", post="401 OK ANY ANY ANY"),
    "api:save_label": Rule("405 405 405 405 405", post="405 405 405 405 405"),
    # Lineage: a run's is run-scoped (another's draft is a 404); dataset versions are shared.
    "api:run_lineage_get": API_RUN,
    "api:dataset_lineage_get": API_LIST,
}

# Django's admin site (`admin:` names, whose list grows with every registered model) guards
# itself: staff only, everyone else is sent to its own login page, where a signed-in non-staff
# user reads that they are not authorised (anonymous visitors of a model's pages meet
# LoginRequiredMiddleware first, hence SIGN_IN). Its exceptions are listed by name.
ADMIN_SITE = Rule("SIGN_IN ADMIN_LOGIN ADMIN_LOGIN ADMIN_LOGIN ANY")
ADMIN_EXCEPTIONS: dict[str, Rule] = {
    "admin:login": Rule("OK OK OK OK REDIRECT"),
    "admin:logout": Rule("ADMIN_LOGIN REDIRECT REDIRECT REDIRECT 405"),
}


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name", or "route:<pattern>" for the few patterns without a name
    template: str  # the full route, e.g. "runs/<int:pk>/"
    callback: Any

    @property
    def is_admin(self) -> bool:
        return self.template.startswith("admin/")


def routes() -> Iterator[Route]:
    """Every URL pattern of the URL conf, with its full route and namespaced name."""

    def walk(patterns: list[Any], prefix: str, namespaces: tuple[str, ...]) -> Iterator[Route]:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                extra = (pattern.namespace,) if pattern.namespace else ()
                yield from walk(pattern.url_patterns, route, namespaces + extra)
            elif isinstance(pattern, URLPattern):
                name = ":".join((*namespaces, pattern.name)) if pattern.name else f"route:{route}"
                yield Route(name=name, template=route, callback=pattern.callback)

    yield from walk(get_resolver().url_patterns, "", ())


def rule_for(route: Route) -> Rule | None:
    if route.name in EXPECT:
        return EXPECT[route.name]
    if route.is_admin:
        return ADMIN_EXCEPTIONS.get(route.name, ADMIN_SITE)
    return None


# --- objects the URLs are filled with -------------------------------------------------------


@pytest.fixture
def world(make_user: Any, data_dir: Any) -> dict[str, Any]:
    """Users of every role, and a finished run and a draft of `owner` with their data."""
    from r1studio.api.services import api_token_create
    from r1studio.evals.models import EvalResult
    from r1studio.runs.models import Run
    from r1studio.traces.models import Trace
    from r1studio.traces.services import traces_ingest

    users = {
        "annotator": make_user("annotator"),
        "owner": make_user("researcher"),
        "other": make_user("researcher"),
        "admin": make_user("admin"),
    }
    owner = users["owner"]
    subjects = {}
    for subject, status in (("finished", "finished"), ("draft", "draft")):
        run = Run.objects.create(owner=owner, name=f"{subject} run", kind="grpo", status=status)
        events = [
            {"type": "metrics", "step": 2, "values": {"reward": 0.5, "loss": 1.0}},
            {"type": "samples", "step": 2, "items": [sample(), sample(accuracy=0.0)]},
            {
                "type": "eval",
                "step": 2,
                "benchmark": "gsm8k",
                "metrics": {"pass@1": 0.5},
                "n_samples": 1,
                "items": [
                    {
                        "problem": "1+1?",
                        "reference": "2",
                        "correct": [True],
                        "completions": ["<answer>2</answer>"],
                    }
                ],
            },
        ]
        events_dispatch(run=run, events=events)
        traces_ingest(run=run, events=events)
        trace = Trace.objects.filter(run=run, source="train").first()
        subjects[subject] = {
            "run": run.pk,
            "trace": trace.pk,
            "step": trace.step,
            "prompt_hash": trace.prompt_hash,
            "result": EvalResult.objects.get(run=run).pk,
        }
    token, _ = api_token_create(user=owner, name="matrix")
    queue, label = _annotation_queue(owner, users["annotator"])
    from r1studio.recipes.models import Recipe

    recipe = Recipe.objects.create(name="matrix", owner=owner, status="finished")
    return {
        "users": users,
        "subjects": subjects,
        "token": token.pk,
        "recipe": recipe.pk,
        "datasets": _dataset_ids(owner),
        "queue": queue.pk,
        "label": label.pk,
        "item": label.item_id,
    }


def _dataset_ids(owner: Any) -> dict[str, int]:
    """A dataset of `owner` with one version and an import job: the URL values naming them."""
    from r1studio.curation.models import DatasetJob
    from r1studio.curation.services import dataset_create, version_write

    dataset = dataset_create(user=owner, name="matrix")
    rows = pa.Table.from_pylist([{"problem": "1+1?", "answer": "2"}])
    version = version_write(
        dataset=dataset, table=rows, user=owner, provenance_type="import", provenance={}
    )
    job = DatasetJob.objects.create(kind="import", dataset=dataset, created_by=owner)
    # Used by a run, so a POST to curation:version_delete is refused and the walk's later
    # pages still find the version.
    from r1studio.curation.models import DatasetUse
    from r1studio.runs.models import Run

    run = Run.objects.create(owner=owner, name="trained", kind="sft", status="finished")
    DatasetUse.objects.create(version=version, run=run, sha256=version.sha256)
    return {
        "dataset_id": dataset.pk,
        "number": version.number,
        "version_id": version.pk,  # lineage
        "job_id": job.pk,
        "index": 0,
    }


def _annotation_queue(owner: Any, annotator: Any) -> tuple[Any, Any]:
    """A queue of two items with `annotator` assigned, and the annotator's draft label."""
    from r1studio.curation.annotation.models import AnnotationItem, AnnotationQueue
    from r1studio.curation.annotation.services import lease_next

    queue = AnnotationQueue.objects.create(name="matrix", created_by=owner)
    queue.annotators.set([annotator])
    for position in range(2):
        data = {"problem": "1+1?", "reference": "2", "think": "1 and 1.", "answer": "2"}
        AnnotationItem.objects.create(queue=queue, position=position, data=data)
    _, label = lease_next(queue=queue, user=annotator)
    return queue, label


def url_for(route: Route, world: dict[str, Any], subject: str) -> str:
    """The route with its parameters filled in from `world` (fails on an unknown parameter)."""
    ids = world["subjects"][subject]
    if route.name == "admin:app_list":
        return "/admin/runs/"
    if route.name == "route:admin/(?P<url>.*)$":
        return "/admin/no-such-page/"
    values: dict[str, Any] = {
        "run_id": ids["run"],
        "trace_id": ids["trace"],
        "result_id": ids["result"],
        "step": ids["step"],
        "prompt_hash": ids["prompt_hash"],
        "fmt": "csv",  # metrics export
        "pk": world["token"] if route.name == "api:token_revoke" else ids["run"],
        "id": world["users"]["owner"].pk,  # admin: a user's password form
        "content_type_id": ContentType.objects.get(app_label="runs", model="run").pk,
        **world["datasets"],  # dataset_id, number (its version), job_id, index (its row)
        "queue_id": world["queue"],
        "label_id": world["label"],
        "item_id": world["item"],
        "recipe_id": world["recipe"],
        "key": "01-stage",  # a recipe stage's key (the editor)
    }
    model_admin = getattr(route.callback, "model_admin", None)
    if model_admin is not None:
        first = model_admin.model._default_manager.order_by("pk").first()
        values["object_id"] = first.pk if first is not None else 1
    else:
        values["object_id"] = ids["run"]

    def fill(match: re.Match[str]) -> str:
        name = match.group(1).rpartition(":")[2]
        assert name in values, f"{route.name}: no value for URL parameter {name!r}; add one"
        return str(values[name])

    url = "/" + re.sub(r"<([^>]+)>", fill, route.template)
    assert "(?P" not in url and "^" not in url, f"{route.name}: add a URL for this regex route"
    return url


def client_for(role: str, world: dict[str, Any]) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(world["users"][role])
    return client


def request(client: Client, method: str, url: str) -> Any:
    """GET or POST `url`; a streamed body (SSE, exports) is left unread: the status is enough.

    (Closing it by hand would fire request_finished and close the test's database connection.)
    """
    try:
        if method == "GET":
            return client.get(url)
        if url.startswith("/api/"):  # a body that passes the schema, so the role check speaks
            return client.post(url, data='{"config": {}}', content_type="application/json")
        return client.post(url)
    except Exception as error:  # the test client re-raises a view's exception: that is a 500
        return type("Crash", (), {"status_code": 500, "error": repr(error)})()


# --- the tests ------------------------------------------------------------------------------


def test_every_url_has_an_expectation() -> None:
    unknown = sorted({route.name for route in routes() if rule_for(route) is None})
    assert unknown == [], f"URLs with no entry in EXPECT: {unknown}. Say who may open them."


@pytest.mark.parametrize("subject", ["finished", "draft"])
@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_what_the_table_says(role: str, subject: str, world: dict) -> None:
    client = client_for(role, world)
    failures = []
    for route in routes():
        rule = rule_for(route)
        assert rule is not None, f"{route.name} has no entry in EXPECT: say who may open it"
        if route.is_admin and subject == "draft":
            continue  # the admin site does not depend on the run
        url = url_for(route, world, subject)
        for method in ("GET", "POST") if rule.post else ("GET",):
            expected = rule.expected(method, role, subject)
            response = request(client, method, url)
            if response.status_code >= 500 or not OUTCOMES[expected](response):
                where = getattr(response, "headers", {}).get("Location", "")
                failures.append(
                    f"{method} {url} ({route.name}): got {response.status_code} {where}"
                    f"{getattr(response, 'error', '')}, expected {expected}"
                )
            if method == "POST" and route.name == "logout" and role != "anonymous":
                client = client_for(role, world)  # signed out by the POST: sign in again
    assert failures == [], f"{role} on the {subject} run:\n" + "\n".join(failures)
