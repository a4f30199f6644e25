"""Prompts shown as conversations: the chat template's role tokens parsed away."""

from __future__ import annotations

import pytest

from pipeline.template import R1_PROMPT_TEMPLATE
from r1studio.traces.text import conversation, prompt_preview


def turns(prompt: str) -> list[tuple[str, str]]:
    return [(m["role"], m["text"]) for m in conversation(prompt)]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("<|user|>What is 61+69?<|end|><|assistant|>", [("user", "What is 61+69?")]),
        (
            "<|system|>Think first.<|end|><|user|>What is 2+3?<|end|><|assistant|><think>",
            [("system", "Think first."), ("user", "What is 2+3?"), ("assistant", "<think>")],
        ),
        (
            "<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nWhat is 2+2?"
            "<|im_end|>\n<|im_start|>assistant\n",
            [("system", "You are Qwen."), ("user", "What is 2+2?")],
        ),
        (
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            [("user", "Hi there")],
        ),
        (
            "<｜begin▁of▁sentence｜>Be brief.<｜User｜>What is 1+1?<｜Assistant｜><think>\n",
            [("system", "Be brief."), ("user", "What is 1+1?"), ("assistant", "<think>")],
        ),
        (
            "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
            [("user", "Hello")],
        ),
        ("<s>[INST] What is 3? [/INST]", [("user", "What is 3?")]),
        ("Plain text, no template <b>", [("", "Plain text, no template <b>")]),
    ],
)
def test_it_parses_the_messages_out_of_common_chat_templates(prompt: str, expected: list) -> None:
    assert turns(prompt) == expected


def test_it_parses_the_plain_r1_template() -> None:
    messages = turns(R1_PROMPT_TEMPLATE.format(problem="What is 5+5?"))

    assert [role for role, _ in messages] == ["system", "user"]
    assert messages[1] == ("user", "What is 5+5?")


def test_it_previews_the_last_user_message_on_one_line() -> None:
    prompt = "<|system|>A long system prompt.<|end|><|user|>Add\n  2 and 3<|end|><|assistant|>"

    assert prompt_preview(prompt) == "Add 2 and 3"
    assert prompt_preview("x" * 200, 10) == "x" * 9 + "…"
    assert prompt_preview("") == ""
