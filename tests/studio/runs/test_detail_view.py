"""The run page: the runs its inputs came from, its tags, its logs, and banners that do not
state a status that goes stale."""

from __future__ import annotations

from pathlib import Path

from django.urls import reverse
from django.utils import timezone

from r1studio.runs.models import Run, RunStatus
from r1studio.runs.services import run_create


def _finished(owner, run_dir: Path, name: str, **fields) -> Run:
    run_dir.mkdir(parents=True, exist_ok=True)
    return Run.objects.create(
        name=name, owner=owner, kind=fields.pop("kind", "grpo"), status=RunStatus.FINISHED,
        run_dir=str(run_dir), finished_at=timezone.now(), **fields,
    )  # fmt: skip


def test_it_says_which_runs_its_inputs_came_from(
    researcher_client, researcher, toy_config, data_dir
):
    zero = _finished(researcher, data_dir / "runs" / "1-a", "zero", step=40)
    checkpoint = Path(zero.run_dir) / "checkpoints" / "checkpoint-20"
    checkpoint.mkdir(parents=True)
    data = _finished(researcher, data_dir / "runs" / "2-b", "samples", kind="generate")
    (Path(data.run_dir) / "dataset").mkdir()
    config = toy_config("sft", model={"path": str(checkpoint)})
    config["data"]["source"] = str(Path(data.run_dir) / "dataset")
    run = run_create(user=researcher, name="sft", config=config, validate=False)

    html = researcher_client.get(reverse("runs:detail", args=[run.pk])).content.decode()

    line = html[html.index("data-run-inputs") :]
    line = line[: line.index("</p>")]
    zero_link = f'<a href="{reverse("runs:detail", args=[zero.pk])}">run #{zero.pk} zero</a>'
    data_link = f'<a href="{reverse("runs:detail", args=[data.pk])}">run #{data.pk} samples</a>'
    assert f"<strong>model</strong> from {zero_link} (checkpoint step 20, finished" in line
    assert f"<strong>data</strong> from {data_link} (dataset, finished" in line


def test_it_edits_and_filters_by_tags(researcher_client, researcher, toy_config, data_dir):
    run = run_create(user=researcher, name="r", config=toy_config("sft"))

    response = researcher_client.post(
        reverse("runs:tags", args=[run.pk]), {"tags": " baseline, lr sweep ,baseline,"}
    )
    page = researcher_client.get(response.url).content.decode()

    run.refresh_from_db()
    assert run.tag_list == ["baseline", "lr sweep"]
    assert 'name="tags" value="baseline, lr sweep"' in page
    assert 'href="/runs/?tag=lr%20sweep"' in page


def test_it_refuses_tags_on_another_researchers_run(client, make_user, toy_config, data_dir):
    owner, other = make_user("researcher"), make_user("researcher")
    run = run_create(user=owner, name="theirs", config=toy_config("sft"))
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FINISHED)
    client.force_login(other)

    assert client.post(reverse("runs:tags", args=[run.pk]), {"tags": "x"}).status_code == 403
    assert Run.objects.get(pk=run.pk).tags == ""


def test_it_tails_both_logs_and_polls_them_while_the_run_is_active(
    researcher_client, researcher, toy_config, data_dir
):
    run = run_create(user=researcher, name="r", config=toy_config("sft"))
    run_dir = data_dir / "runs" / "x"
    run_dir.mkdir(parents=True)
    (run_dir / "stdout.log").write_text("12:00:01 INFO pipeline.events: step 2: loss=0.5\n")
    (run_dir / "stderr.log").write_text("12:00:02 WARNING py.warnings: careful\n")
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, run_dir=str(run_dir))

    running = researcher_client.get(reverse("runs:logs", args=[run.pk])).content.decode()
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FINISHED)
    finished = researcher_client.get(reverse("runs:logs", args=[run.pk])).content.decode()
    page = researcher_client.get(reverse("runs:detail", args=[run.pk])).content.decode()

    assert "<html" not in running and 'id="run-logs"' in running
    assert f'hx-get="{reverse("runs:logs", args=[run.pk])}" hx-trigger="every 2s"' in running
    assert "step 2: loss=0.5" in running and "WARNING py.warnings: careful" in running
    assert "hx-trigger" not in finished and "step 2: loss=0.5" in finished
    assert 'data-log="stdout"' in page and 'data-log="stderr"' in page


def test_its_banners_say_what_was_done_not_a_status_that_goes_stale(
    researcher_client, researcher, toy_config, data_dir, django_capture_on_commit_callbacks
):
    run = run_create(user=researcher, name="r", config=toy_config("sft"))

    with django_capture_on_commit_callbacks(execute=False):
        response = researcher_client.post(reverse("runs:launch", args=[run.pk]), follow=True)

    html = response.content.decode()
    assert f"Launched run #{run.pk}." in html and "is queued" not in html
