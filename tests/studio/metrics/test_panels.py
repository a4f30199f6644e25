"""Which series go on which panel: benchmark pass@1, think_first, a generate run's counts."""

from __future__ import annotations

from r1studio.metrics.panels import PANELS, group_names, panel_names, panel_spec

GENERATE_NAMES = [
    "dropped/decontaminate", "dropped/dedup", "dropped/keep_correct", "keep_rate", "kept",
    "prompts", "samples", "verifiers/accuracy/mean", "verifiers/format/mean",
]  # fmt: skip


def test_it_charts_held_out_pass_at_1_by_short_benchmark_name() -> None:
    names = ["eval/toy-heldout/pass@1", "eval/math500/pass@1", "eval/pass@1", "reward"]
    assert panel_names("eval", names) == [
        "eval/math500/pass@1", "eval/toy-heldout/pass@1", "eval/pass@1"
    ]  # fmt: skip
    # a whole path (what older pipelines logged) is not a benchmark name
    assert panel_names("eval", ["eval//srv/toy/heldout.jsonl/pass@1"]) == []


def test_it_charts_think_first_in_training_and_on_benchmarks() -> None:
    names = ["think_first", "eval/toy-heldout/think_first", "eval/toy-heldout/pass@1"]
    panels, other = group_names(names)
    by_key = {p["key"]: p["names"] for p in panels}
    assert by_key["think_first"] == ["think_first", "eval/toy-heldout/think_first"]
    assert by_key["eval"] == ["eval/toy-heldout/pass@1"] and other == []


def test_it_summarises_a_generate_run_in_filter_order() -> None:
    panels, other = group_names(GENERATE_NAMES)

    by_key = {p["key"]: p["names"] for p in panels}
    assert by_key["generate"] == [
        "prompts", "dropped/decontaminate", "samples", "dropped/keep_correct", "dropped/dedup",
        "kept", "keep_rate",
    ]  # fmt: skip
    assert by_key["verifiers"] == ["verifiers/accuracy/mean", "verifiers/format/mean"]
    assert other == []
    assert panel_names("generate", sorted(GENERATE_NAMES))[:3] == [
        "prompts",
        "dropped/decontaminate",
        "samples",
    ]


def test_it_gives_every_panel_a_y_axis_title_in_the_spec_charts_js_reads() -> None:
    spec = {p["key"]: p for p in panel_spec()}
    assert all(p["y_title"] for p in spec.values())
    assert (spec["generate"]["chart"], spec["generate"]["rate"]) == ("bars", "keep_rate")
    assert spec["reward"]["chart"] == "lines" and spec["reward"]["log_y"] is False
    assert len(spec) == len(PANELS)
