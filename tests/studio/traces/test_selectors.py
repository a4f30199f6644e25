"""traces_page filters and keyset pagination; groups; a prompt over time; text helpers."""

from __future__ import annotations

from typing import Any

from r1studio.traces.selectors import prompt_over_time, trace_group, traces_page
from r1studio.traces.services import prompt_hash
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
    assert page[0].prompt_preview.startswith("problem")


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
