"""YAML from users: no aliases (the billion laughs), a size cap, no stack-deep nesting."""

from __future__ import annotations

import time

import pytest

from pipeline import safeyaml

# The probe's payload, give or take: 350 bytes that safe_load expands to 9**9 strings.
BILLION_LAUGHS = "\n".join(
    [
        'kind: grpo\na: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{x}: &{x} [{','.join(['*' + p] * 9)}]"
            for p, x in zip("abcdefg", "bcdefgh", strict=True)
        ),
        "i: [*h,*h,*h,*h,*h,*h,*h,*h,*h]",
        "",
    ]
)


def test_it_refuses_the_billion_laughs_quickly_with_a_clear_message():
    assert len(BILLION_LAUGHS) < 500
    started = time.monotonic()
    with pytest.raises(safeyaml.YamlError, match=r"aliases \(\*name\) are not accepted"):
        safeyaml.load(BILLION_LAUGHS)
    assert time.monotonic() - started < 1


def test_it_refuses_any_alias_even_a_harmless_one():
    with pytest.raises(safeyaml.YamlError, match="line 2"):
        safeyaml.load("base: &base {max_steps: 4}\ntrainer: *base\n")


def test_it_refuses_texts_over_the_size_cap():
    with pytest.raises(safeyaml.YamlError, match="at most 100 are accepted"):
        safeyaml.load("x: " + "a" * 200, max_bytes=100)


def test_it_refuses_nesting_deeper_than_the_parser_can_follow():
    with pytest.raises(safeyaml.YamlError, match="nested too deeply"):
        safeyaml.load("[" * 50_000)


def test_it_reads_plain_configs_and_reports_syntax_errors_on_one_line():
    assert safeyaml.load("kind: sft\ntrainer: {max_steps: 4}\n") == {
        "kind": "sft",
        "trainer": {"max_steps": 4},
    }
    with pytest.raises(safeyaml.YamlError) as info:
        safeyaml.load("a: [1\nb")
    assert str(info.value).startswith("YAML: ") and "\n" not in str(info.value)


def test_it_dumps_a_value_used_twice_without_an_alias_so_it_reads_back():
    shared = {"name": "accuracy"}
    text = safeyaml.dump({"rewards": [shared], "verifiers": [shared]})
    assert "&" not in text and "*" not in text
    assert safeyaml.load(text) == {"rewards": [shared], "verifiers": [shared]}
