"""traces_page filters and keyset pagination; groups; a prompt over time; text helpers."""

from __future__ import annotations

from typing import Any

from r1studio.traces.models import Trace
from r1studio.traces.selectors import (
    prompt_over_time,
    run_probe_prompts,
    trace_group,
    trace_neighbours,
    trace_reward_breakdown,
    traces_export_chunks,
    traces_page,
)
from r1studio.traces.services import prompt_hash, traces_ingest
from r1studio.traces.text import reflection_counts, segments, word_diff
from tests.studio.traces.conftest import sample


def fill(run: Any, add_samples: Any, steps: range, per_step: int = 4) -> None:
    for step in steps:
        items = [
            sample(
                prompt=f"problem {i}",
                completion=f"<think>step {step} try {i}</think> <answer>{i}</answer>",
                accuracy=float(i % 2),
                advantage=i - 1.5,
            )
            for i in range(per_step)
        ]
        add_samples(run, step, items)


def test_it_pages_through_every_trace_newest_first(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    fill(run, add_samples, range(1, 11))
    seen, cursor = [], None
    while True:
        page, cursor = traces_page(user=researcher, run=run, after=cursor, limit=7)
        seen += [(t.step, t.pk) for t in page]
        if cursor is None:
            break
    assert len(seen) == 40 == len(set(seen))
    assert seen == sorted(seen, reverse=True)
    assert page[0].prompt.startswith("problem")


def test_it_filters_by_step_reward_correctness_and_text(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run, other = make_run(researcher), make_run(researcher)
    fill(run, add_samples, range(1, 11))
    fill(other, add_samples, range(1, 3))

    def steps_of(**filters: Any) -> list[int]:
        return sorted({t.step for t in traces_page(user=researcher, limit=200, **filters)[0]})

    def count(**filters: Any) -> int:
        return len(traces_page(user=researcher, limit=200, **filters)[0])

    assert count() == 48
    assert count(run=run) == 40
    assert steps_of(run=run, step_min=3, step_max=5) == [3, 4, 5]
    assert count(run=run, correct=True) == 20
    assert all(t.correct is False for t in traces_page(user=researcher, correct=False)[0])
    assert count(run=run, reward_min=1.5) == 20  # format 1 + accuracy 1
    assert count(run=run, reward_max=1.0) == 20
    assert count(run=run, q="STEP 7 TRY") == 4
    assert count(run=run, q="problem 3", step_min=9) == 2
    assert count(run=run, source="eval") == 0


def test_it_shows_nothing_to_annotators_and_hides_others_drafts(
    researcher: Any, annotator: Any, make_user: Any, make_run: Any, add_samples: Any
) -> None:
    draft = make_run(make_user("researcher"), status="draft")
    fill(draft, add_samples, range(1, 2))
    assert traces_page(user=annotator) == ([], None)
    assert traces_page(user=researcher) == ([], None)
    assert traces_page(user=researcher, run=draft) == ([], None)


def test_it_gathers_a_group_with_its_reward_columns(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    same = [sample(prompt="p", advantage=a, accuracy=acc) for a, acc in [(1.0, 1.0), (-1.0, 0.0)]]
    add_samples(run, 5, same + [sample(prompt="other")])

    group = trace_group(run=run, step=5, prompt_hash=prompt_hash("p"))

    assert [t.advantage for t in group["traces"]] == [1.0, -1.0]
    assert group["reward_names"] == ["accuracy", "format"]
    assert [t.reward_cells for t in group["traces"]] == [[1.0, 1.0], [0.0, 1.0]]
    assert group["stats"]["mean"] == 1.5 and (group["correct"], group["graded"]) == (1, 2)


def test_it_follows_a_prompt_across_steps(researcher: Any, make_run: Any, add_samples: Any) -> None:
    run = make_run(researcher)
    add_samples(run, 1, [sample(prompt="p", completion="<think>5</think><answer>5</answer>")])
    add_samples(
        run,
        9,
        [
            sample(
                prompt="p",
                completion="<think>5. Wait, let me re-check: 5</think><answer>5</answer>",
            ),
            sample(prompt="p", completion="<think>hmm 5</think><answer>5</answer>"),
        ],
    )

    history = prompt_over_time(run=run, prompt_hash=prompt_hash("p"))

    first, later = history["rows"]
    assert (first["step"], first["n"], later["step"], later["n"]) == (1, 1, 9, 2)
    assert first["reflections"] == 0 and later["reflections"] == 1.5  # 3 phrases / 2 completions
    assert later["phrases"] == {"wait": 0.5, "let me re-check": 0.5, "hmm": 0.5}
    assert later["diff_stats"]["added"] >= 4
    assert history["chart"]["steps"] == [1, 9]
    assert history["prompt"] == "p"


def test_it_follows_probe_prompts_and_switches_between_a_prompts_sources(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    add_samples(run, 1, [sample(prompt="p")])
    for step in (0, 2, 4):
        add_samples(run, step, [{**sample(prompt="p"), "source": "probe"}])
        add_samples(run, step, [{**sample(prompt="q"), "source": "probe"}])

    train = prompt_over_time(run=run, prompt_hash=prompt_hash("p"))
    probe = prompt_over_time(run=run, prompt_hash=prompt_hash("p"), source="probe")
    unknown = prompt_over_time(run=run, prompt_hash=prompt_hash("q"), source="train")

    assert (train["source"], [r["step"] for r in train["rows"]]) == ("train", [1])
    assert (probe["source"], [r["step"] for r in probe["rows"]]) == ("probe", [0, 2, 4])
    assert [(s["source"], s["steps"]) for s in train["sources"]] == [("train", 1), ("probe", 3)]
    assert unknown["source"] == "probe" and len(unknown["rows"]) == 3  # the one it has
    probes = run_probe_prompts(run=run)
    assert [(p["prompt"], p["steps"]) for p in probes] == [("p", 3), ("q", 3)]


def test_it_follows_an_eval_problem_across_evaluations(researcher: Any, make_run: Any) -> None:
    run = make_run(researcher)
    item = {"problem": "What is 2+2?", "answer": "4", "completions": ["<answer>4</answer>"]}
    item["correct"] = [True]
    events = [{"type": "eval", "step": s, "benchmark": "toy", "items": [item]} for s in (5, 10)]
    traces_ingest(run=run, events=events)

    history = prompt_over_time(run=run, prompt_hash=prompt_hash("What is 2+2?"))

    assert history["source"] == "eval" and [r["step"] for r in history["rows"]] == [5, 10]
    assert history["rows"][1]["correct"] == 1


def test_it_finds_the_previous_and_next_trace_within_the_filters(
    researcher: Any, make_run: Any, add_samples: Any
) -> None:
    run = make_run(researcher)
    fill(run, add_samples, range(1, 4))  # per step: problems 0..3, odd ones correct
    ordered = traces_page(user=researcher, run=run, correct=True)[0]
    middle = ordered[2]

    around = trace_neighbours(user=researcher, trace=middle, run=run, correct=True)
    everything = trace_neighbours(user=researcher, trace=middle)

    assert (around["newer"].pk, around["older"].pk) == (ordered[1].pk, ordered[3].pk)
    assert everything["newer"].pk == middle.pk + 1 and everything["older"].pk == middle.pk - 1
    last = trace_neighbours(user=researcher, trace=ordered[-1], run=run, correct=True)
    assert last["older"] is None and last["newer"].pk == ordered[-2].pk


def test_it_reads_an_export_in_keyset_chunks_of_whole_traces(
    researcher: Any, make_run: Any, add_samples: Any, django_assert_max_num_queries: Any
) -> None:
    run = make_run(researcher)
    fill(run, add_samples, range(1, 11))  # 40 traces, 20 correct

    with django_assert_max_num_queries(6):  # the run check, then one query per chunk
        chunks = list(traces_export_chunks(user=researcher, run=run, correct=True, chunk_size=7))

    assert [len(c) for c in chunks] == [7, 7, 6]
    rows = [t for chunk in chunks for t in chunk]
    assert [(t.step, t.pk) for t in rows] == sorted(((t.step, t.pk) for t in rows), reverse=True)
    assert all(t.correct for t in rows) and rows[0].completion.startswith("<think>")


def test_it_weighs_each_reward_with_the_runs_config(researcher: Any, make_run: Any) -> None:
    config = {"rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.2}]}
    run = make_run(researcher, config=config)
    trace = Trace(run=run, rewards={"accuracy": 0.0, "format": 1.0}, reward=0.2)
    unweighted = Trace(run=run, rewards={"accuracy": 1.0, "format": 1.0, "tags": 0.5}, reward=2.5)

    breakdown = trace_reward_breakdown(trace=trace)
    unknown = trace_reward_breakdown(trace=unweighted)

    assert [(r["name"], r["value"], r["weight"], r["weighted"]) for r in breakdown["rows"]] == [
        ("accuracy", 0.0, 1.0, 0.0),
        ("format", 1.0, 0.2, 0.2),
    ]
    assert breakdown["total"] == 0.2 and breakdown["matches"]
    assert unknown["rows"][2]["weight"] is None and not unknown["matches"]
    # A GRPO config without a rewards list trains on the stage's defaults.
    default = Trace(run=make_run(researcher), rewards={"format": 1.0}, reward=0.2)
    assert trace_reward_breakdown(trace=default)["rows"][0]["weight"] == 0.2


def test_it_counts_reflection_words_as_whole_words() -> None:
    counts = reflection_counts("Wait... waiter? Hmm. Let me  re-check. AHA! Let me recheck")
    assert counts["wait"] == 1 and counts["hmm"] == 1 and counts["aha"] == 1
    assert counts["let me re-check"] == 1 and counts["let me recheck"] == 1


def test_it_splits_a_completion_into_think_and_answer_segments() -> None:
    parts = segments("intro <think>a <b>bold</b></think>\n<answer><script>x</script></answer>")
    assert [(p["kind"], p["text"]) for p in parts if p["kind"] != "tag"] == [
        ("text", "intro "),
        ("think", "a <b>bold</b>"),
        ("answer", "<script>x</script>"),
    ]


def test_it_diffs_words() -> None:
    parts = word_diff("the answer is 4", "the answer is 5")
    assert {"op": "delete", "text": "4"} in parts and {"op": "insert", "text": "5"} in parts
