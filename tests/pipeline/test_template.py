"""The R1 template: tags, the system prompt, and a parser that never raises."""

from __future__ import annotations

import pytest

from pipeline.template import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    R1_PROMPT_TEMPLATE,
    R1_SYSTEM_PROMPT,
    THINK_CLOSE,
    THINK_OPEN,
    ThinkAnswer,
    completion_text,
    make_conversation,
    parse_completion,
    prompt_prefills_think,
    render_prompt,
    tag_counts,
)


def test_it_names_the_four_tags_and_mentions_them_in_the_system_prompt():
    assert (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE) == (
        "<think>",
        "</think>",
        "<answer>",
        "</answer>",
    )
    for tag in (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE):
        assert tag in R1_SYSTEM_PROMPT
    assert "{problem}" in R1_PROMPT_TEMPLATE


def test_it_splits_a_well_formed_completion():
    parsed = parse_completion("<think>\n3 + 4 = 7\n</think>\n<answer> 7 </answer>\n")
    assert parsed == ThinkAnswer(think="3 + 4 = 7", answer="7", think_first=True, well_formed=True)


@pytest.mark.parametrize(
    "text",
    [
        "<answer>7</answer>",  # no think
        "<think>x</think>",  # no answer
        "preamble <think>x</think><answer>7</answer>",  # text before
        "<think>x</think><answer>7</answer> and more",  # text after
        "<think>x</think>between<answer>7</answer>",  # text between
        "<think>a<think>b</think></think><answer>7</answer>",  # nested think
        "<think>x</think><answer>6</answer><answer>7</answer>",  # duplicated answer
        "<answer>7</answer><think>x</think>",  # wrong order
        "<think>x</think><answer>7",  # unclosed answer
        "<think>x<answer>7</answer>",  # unclosed think
    ],
)
def test_it_flags_malformed_completions_as_not_well_formed(text):
    assert parse_completion(text).well_formed is False


@pytest.mark.parametrize(
    "value", [None, "", 42, 3.5, b"<think>x</think>", object(), {"role": "x"}, [None, 1], [[]]]
)
def test_it_never_raises_on_junk(value):
    parsed = parse_completion(value)
    assert isinstance(parsed, ThinkAnswer)
    assert parsed.well_formed is False


def test_it_takes_the_last_closed_answer_and_ignores_an_unclosed_one():
    assert parse_completion("<answer>6</answer> no wait <answer>7</answer>").answer == "7"
    assert parse_completion("<think>x</think><answer>7").answer is None
    assert parse_completion("<answer>6</answer><answer>7").answer == "6"


def test_it_reads_a_completion_that_starts_inside_a_prefilled_think():
    text = "2 and 2 make 4</think><answer>4</answer>"
    assert parse_completion(text).well_formed is False
    parsed = parse_completion(text, think_prefilled=True)
    assert (parsed.think, parsed.answer, parsed.think_first, parsed.well_formed) == (
        "2 and 2 make 4",
        "4",
        True,
        True,
    )


def test_it_reports_think_first_even_when_the_rest_is_malformed():
    assert parse_completion("  <think>unfinished").think_first is True
    assert parse_completion("<think>unfinished").think is None
    assert parse_completion("answer first <think>x</think>").think_first is False


def test_it_reads_chat_message_completions():
    chat = [{"role": "assistant", "content": "<think>t</think><answer>1</answer>"}]
    assert completion_text(chat) == "<think>t</think><answer>1</answer>"
    assert parse_completion(chat).well_formed is True
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "<answer>2</answer>"}]}]
    assert parse_completion(parts).answer == "2"
    assert completion_text(None) == "" and completion_text(7) == ""


def test_it_counts_tags():
    assert tag_counts("<think><think></think><answer>") == {
        "<think>": 2,
        "</think>": 1,
        "<answer>": 1,
        "</answer>": 0,
    }


def test_it_builds_prompts_and_detects_a_prefilled_think():
    messages = make_conversation("What is 2+2?")
    assert messages == [
        {"role": "system", "content": R1_SYSTEM_PROMPT},
        {"role": "user", "content": "What is 2+2?"},
    ]
    assert make_conversation("q", system_prompt=None) == [{"role": "user", "content": "q"}]
    rendered = render_prompt("What is {x}?")
    assert rendered.endswith("User: What is {x}?\nAssistant:")
    assert prompt_prefills_think("<|Assistant|><think>\n") is True
    assert prompt_prefills_think(rendered) is False
