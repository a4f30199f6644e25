"""traces_ingest: samples and eval items become traces, parsed, scored and stored once."""

from __future__ import annotations

from typing import Any

from r1studio.traces.models import Trace
from r1studio.traces.services import prompt_hash, traces_ingest
from tests.studio.traces.conftest import sample


def test_it_stores_each_sample_with_its_think_answer_and_rewards(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    items = [
        sample(accuracy=1.0, advantage=0.7),
        sample(completion="<think>hmm</think> <answer>6</answer>", accuracy=0.0, advantage=-0.7),
        sample(completion="no tags", accuracy=None, advantage=0.0),
    ]

    assert add_samples(run, 4, items) == 3

    right, wrong, unknown = Trace.objects.filter(run=run).order_by("position")
    assert (right.step, right.source, right.think, right.answer) == (4, "train", "2+3 is 5", "5")
    assert right.rewards == {"format": 1.0, "accuracy": 1.0}
    assert (right.reward, right.advantage, right.correct, right.well_formed) == (
        2.0,
        0.7,
        True,
        True,
    )
    assert (wrong.answer, wrong.correct, wrong.advantage) == ("6", False, -0.7)
    assert (unknown.think, unknown.answer, unknown.correct) == (None, None, None)
    assert right.prompt_hash == wrong.prompt_hash == prompt_hash("What is 2+3?")
    assert right.length == len(items[0]["completion"])


def test_it_stores_nothing_twice_when_a_batch_is_ingested_again(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    items = [sample(), sample(completion="<answer>5</answer>")]
    assert add_samples(run, 2, items) == 2
    assert add_samples(run, 2, items) == 0
    assert add_samples(run, 3, items) == 2
    assert Trace.objects.filter(run=run).count() == 4


def test_it_accepts_chat_prompts_and_completions(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    item = sample()
    item["prompt"] = [
        {"role": "system", "content": "Think first."},
        {"role": "user", "content": "2+3?"},
    ]
    item["completion"] = [{"role": "assistant", "content": "<answer>5</answer>"}]
    add_samples(run, 1, [item])
    trace = Trace.objects.get(run=run)
    assert trace.prompt == "system: Think first.\n\nuser: 2+3?"
    assert (trace.completion, trace.answer) == ("<answer>5</answer>", "5")


def test_it_stores_every_completion_of_eval_items(researcher: Any, make_run: Any) -> None:
    run = make_run(researcher)
    event = {
        "type": "eval",
        "step": 30,
        "benchmark": "math500",
        "metrics": {"pass@1": 0.5},
        "n_samples": 2,
        "items": [
            {
                "problem": "1+1?",
                "reference": "2",
                "correct": [True, False],
                "completions": ["<answer>2</answer>", "<answer>3</answer>"],
            },
            {
                "problem": "2+2?",
                "reference": "4",
                "correct": [False, False],
                "completions": ["<answer>5</answer>", "<answer>22</answer>"],
            },
        ],
    }
    assert (
        traces_ingest(run=run, events=[event, {"type": "metrics", "step": 30, "values": {}}]) == 4
    )
    traces = list(Trace.objects.filter(run=run).order_by("position"))
    assert [(t.source, t.benchmark, t.step) for t in traces] == [("eval", "math500", 30)] * 4
    assert [t.correct for t in traces] == [True, False, False, False]
    assert [t.answer for t in traces] == ["2", "3", "5", "22"]
    assert traces[0].prompt == "1+1?" and traces[0].reference == "2"


def test_it_stores_probe_items_as_probe_traces_beside_the_training_ones(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    probe = {**sample(advantage=None), "source": "probe"}

    assert add_samples(run, 3, [sample(), probe]) == 2

    train, probed = Trace.objects.filter(run=run).order_by("position")
    assert (train.source, probed.source) == ("train", "probe")
    assert probed.prompt_hash == train.prompt_hash and probed.advantage is None
    # A whole event may be marked instead of each item.
    event = {"type": "samples", "step": 6, "source": "probe", "items": [sample()]}
    assert traces_ingest(run=run, events=[event]) == 1
    assert Trace.objects.get(run=run, step=6).source == "probe"
