"""The common columns of a dataset version, and how an imported file's columns become them.

Common columns: `problem`, `think`, `answer`, `reference`, `source` (text) and `messages`
(TRL's conversational format: a list of `{role, content}`). A mapping names, for each common
column, the file's column that fills it (`{"problem": "question"}`); with `keep_other` the
file's other columns come along under their own names (a column named like a common column
but not mapped is left out: the mapping decides what the common columns hold).

`block_map` applies a mapping to one block of rows and checks it: a mapped column that is
missing, null or of the wrong type is an `ImportProblem` naming the line or row and the
column. It then derives what is derivable, with `pipeline.template`'s helpers, so every
version carries the common columns it can: `think`/`answer` (and `problem`) from `messages`,
or `messages` from `problem` and `think`/`answer`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.template import ANSWER_OPEN, TAGS, THINK_OPEN, parse_completion
from r1studio.curation.readers import ImportProblem

TARGETS = ("problem", "think", "answer", "reference", "messages", "source")
TEXT_TARGETS = ("problem", "think", "answer", "reference", "source")
MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)
# Names other datasets use for the common columns, offered when nothing else matches.
ALIASES = {
    "problem": ("question", "prompt", "instruction", "query"),
    "think": ("reasoning", "thinking", "thought", "thoughts"),
    "reference": ("ground_truth", "gold", "gold_answer", "target"),
}
# Types a text column may arrive as: numbers and true/false become their text (a reference
# answer written as 42 is the text "42"); lists and objects are refused.
AS_TEXT = (
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_integer,
    pa.types.is_floating,
    pa.types.is_boolean,
    pa.types.is_decimal,
)
Where = Callable[[int], str]


@dataclass(frozen=True)
class ColumnMapping:
    """Common column → the file's column; `keep_other` keeps the file's other columns."""

    columns: dict[str, str] = field(default_factory=dict)
    keep_other: bool = True


def mapping_parse(raw: Any, *, keep_other: bool = True) -> ColumnMapping:
    """A mapping from a dict or its JSON text (`{"problem": "question", ...}`); {} or None:
    map the columns named like the common columns (see `mapping_suggest`)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise ImportProblem(f"the column mapping is not valid JSON ({exc})") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ImportProblem('the column mapping is an object: {"problem": "question", ...}')
    columns = {}
    for target, source in raw.items():
        if target not in TARGETS:
            raise ImportProblem(f"{target!r} is not a common column: map to {', '.join(TARGETS)}")
        if source in (None, ""):
            continue  # "not mapped", as a form's empty choice sends it
        if not isinstance(source, str) or "\x00" in source:
            raise ImportProblem(f"the column mapped to {target!r} must be a column name")
        columns[target] = source
    return ColumnMapping(columns=columns, keep_other=bool(keep_other))


def mapping_suggest(names: list[str]) -> dict[str, str]:
    """The obvious mapping for a file with these columns: same names first, then aliases."""
    suggested = {}
    lowered = {name.lower(): name for name in names}
    for target in TARGETS:
        for candidate in (target, *ALIASES.get(target, ())):
            if candidate in lowered:
                suggested[target] = lowered[candidate]
                break
    return suggested


def mapping_resolve(mapping: ColumnMapping, names: list[str]) -> ColumnMapping:
    if mapping.columns:
        return mapping
    return ColumnMapping(columns=mapping_suggest(names), keep_other=mapping.keep_other)


def _as(target: str, source: str) -> str:
    return "" if target == source else f" (mapped to {target})"


def _kind(data_type: pa.DataType) -> str:
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        return "a list"
    if pa.types.is_struct(data_type):
        return "an object"
    return f"a {data_type}"


def _first(mask: Any) -> int:
    return int(pc.index(mask, True).as_py())


def _text(column: pa.ChunkedArray, source: str, target: str, where: Where) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_null(kind):
        raise ImportProblem(f"{where(0)}: column {source!r}{_as(target, source)} has no value")
    if not any(check(kind) for check in AS_TEXT):
        row = _first(pc.is_valid(column))
        raise ImportProblem(
            f"{where(row)}: column {source!r}{_as(target, source)} should be text, "
            f"not {_kind(kind)}"
        )
    column = column.cast(pa.string())
    if column.null_count:
        row = _first(pc.is_null(column))
        raise ImportProblem(f"{where(row)}: column {source!r}{_as(target, source)} has no value")
    return column


def _messages_from_json(column: pa.ChunkedArray, source: str, where: Where) -> pa.Array:
    # CSV cells (and JSONL strings) may hold the conversation as JSON text.
    values = []
    for row, text in enumerate(column.to_pylist()):
        try:
            messages = json.loads(text) if text is not None else None
        except ValueError:
            messages = None
        ok = isinstance(messages, list) and messages
        ok = ok and all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
            for m in messages
        )
        if not ok:
            raise ImportProblem(
                f"{where(row)}: column {source!r} should be a JSON list of "
                '{"role", "content"} messages'
            )
        values.append([{"role": m["role"], "content": m["content"]} for m in messages])
    return pa.array(values, MESSAGES)


def _messages(column: pa.ChunkedArray, source: str, where: Where) -> pa.Array:
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _messages_from_json(column, source, where)
    shape = "should be a list of {role, content} messages"
    if pa.types.is_null(kind):
        raise ImportProblem(f"{where(0)}: column {source!r} has no value")
    item = kind.value_type if pa.types.is_list(kind) or pa.types.is_large_list(kind) else None
    names = (
        {item.field(i).name for i in range(item.num_fields)} if pa.types.is_struct(item) else set()
    )
    if not {"role", "content"} <= names:
        raise ImportProblem(f"{where(_first(pc.is_valid(column)))}: column {source!r} {shape}")
    lists = column.combine_chunks()
    if lists.null_count:
        raise ImportProblem(f"{where(_first(pc.is_null(lists)))}: column {source!r} has no value")
    lengths = pc.list_value_length(lists)
    if pc.any(pc.equal(lengths, 0)).as_py():
        row = _first(pc.equal(lengths, 0))
        raise ImportProblem(f"{where(row)}: column {source!r} holds no messages")
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists)
    parts = []
    for name in ("role", "content"):
        bad = pc.is_null(flat) if flat.null_count else None
        if bad is None:
            part = pc.struct_field(flat, name)
            text = pa.types.is_string(part.type) or pa.types.is_large_string(part.type)
            bad = pc.is_null(part) if text else pc.is_valid(part)
            if text and not part.null_count:
                parts.append(part.cast(pa.string()))
                continue
        if not pc.any(bad).as_py():
            bad = pc.is_null(flat)  # a column of nulls only: its first row
        row = parents[max(0, _first(bad))].as_py() if len(flat) else 0
        raise ImportProblem(f"{where(row)}: column {source!r}: every message needs a text {name!r}")
    offsets = np.zeros(len(lists) + 1, dtype=np.int32)
    np.cumsum(lengths.to_numpy(zero_copy_only=False), out=offsets[1:])
    values = pa.StructArray.from_arrays(parts, fields=list(MESSAGE))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def block_map(table: pa.Table, mapping: ColumnMapping, where: Where) -> tuple[pa.Table, list[str]]:
    """The block under the common columns (checked), its kept columns, and what was derived."""
    out: dict[str, Any] = {}
    for target in TARGETS:
        source = mapping.columns.get(target)
        if source is None:
            continue
        if source not in table.column_names:
            raise ImportProblem(f"{where(0)}: no column {source!r}{_as(target, source)}")
        column = table.column(source)
        if target == "messages":
            out[target] = _messages(column, source, where)
        else:
            out[target] = _text(column, source, target, where)
    derived = derive_missing(out, len(table))
    if mapping.keep_other:
        used = set(mapping.columns.values())
        for name in table.column_names:
            if name not in used and name not in TARGETS:
                out[name] = table.column(name)
    ordered = [name for name in TARGETS if name in out] + [n for n in out if n not in TARGETS]
    return pa.table({name: out[name] for name in ordered}), derived


# --- deriving the common columns -------------------------------------------------------------


def derive_missing(columns: dict[str, Any], rows: int) -> list[str]:
    """Add the common columns derivable from the others (in place); returns their names."""
    if "messages" in columns and "think" not in columns and "answer" not in columns:
        parts = _from_messages(columns["messages"])
        names = [n for n in ("problem", "think", "answer") if n not in columns]
        for name in names:
            columns[name] = parts[name]
        return names
    if (
        "messages" not in columns
        and "problem" in columns
        and ("think" in columns or "answer" in columns)
    ):
        nulls = pa.nulls(rows, pa.string())
        columns["messages"] = messages_build(
            columns["problem"], columns.get("think", nulls), columns.get("answer", nulls)
        )
        return ["messages"]
    return []


def _from_messages(messages: Any) -> dict[str, pa.Array]:
    problems, thinks, answers = [], [], []
    for conversation in messages.to_pylist():
        conversation = conversation or []
        last = max(
            (i for i, m in enumerate(conversation) if m and m.get("role") == "assistant"),
            default=None,
        )
        before = conversation if last is None else conversation[:last]
        users = [m.get("content") for m in before if m and m.get("role") == "user"]
        problems.append(users[-1] if users else None)
        if last is None:
            thinks.append(None)
            answers.append(None)
            continue
        text = conversation[last].get("content") or ""
        if any(tag in text for tag in TAGS):
            parsed = parse_completion(text)
            thinks.append(parsed.think)
            answers.append(parsed.answer)
        else:  # a plain (non-reasoning) reply is all answer
            thinks.append(None)
            answers.append(text.strip())
    return {
        "problem": pa.array(problems, pa.string()),
        "think": pa.array(thinks, pa.string()),
        "answer": pa.array(answers, pa.string()),
    }


def assistant_text(think: Any, answer: Any) -> pa.Array:
    """`<think>…</think>` then `<answer>…</answer>` (either alone when the other is null), the
    R1 format `parse_completion` splits back into the same think and answer."""
    think, answer = _array(think), _array(answer)
    both = pc.binary_join_element_wise(
        THINK_OPEN + "\n", think, "\n</think>\n" + ANSWER_OPEN + "\n", answer, "\n</answer>", ""
    )
    if not think.null_count and not answer.null_count:
        return both
    think_only = pc.binary_join_element_wise(THINK_OPEN + "\n", think, "\n</think>", "")
    answer_only = pc.binary_join_element_wise(ANSWER_OPEN + "\n", answer, "\n</answer>", "")
    return pc.coalesce(both, think_only, answer_only)


def _reply_parts(think: pa.Array, answer: pa.Array) -> list[Any] | None:
    """The pieces of `assistant_text` to join, when no row lacks its reply's parts."""
    think_open, answer_open = THINK_OPEN + "\n", ANSWER_OPEN + "\n"
    if not think.null_count and not answer.null_count:
        return [think_open, think, "\n</think>\n" + answer_open, answer, "\n</answer>"]
    if think.null_count == len(think) and not answer.null_count:
        return [answer_open, answer, "\n</answer>"]
    if answer.null_count == len(answer) and not think.null_count:
        return [think_open, think, "\n</think>"]
    return None


def messages_build(problem: Any, think: Any, answer: Any) -> pa.Array:
    """TRL conversational rows: the user's problem (a `make_conversation` turn, no system
    prompt) and, where there is one, the assistant's think and answer.

    Vectorised for 800k long rows: one join writes each row's user text and reply side by
    side, and the messages' offsets cut it in two (the text is copied once).
    """
    problem = pc.fill_null(_array(problem).cast(pa.string()), "")
    think, answer = _array(think), _array(answer)
    rows = len(problem)
    parts = _reply_parts(think, answer)
    if parts is not None:  # every row has a reply: one join writes it all
        has_reply = np.ones(rows, dtype=bool)
    else:
        reply = assistant_text(think, answer)
        has_reply = pc.is_valid(reply).to_numpy(zero_copy_only=False)
        parts = [pc.fill_null(reply, "")]
    joined = pc.binary_join_element_wise(problem, *parts, "")
    row_bounds = np.frombuffer(joined.buffers()[1], dtype=np.int32)[: rows + 1]
    starts = row_bounds[:-1]
    lists = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(1 + has_reply, out=lists[1:])
    first = lists[:-1]
    bounds = np.empty(lists[-1] + 1, dtype=np.int32)
    bounds[first] = starts
    user_length = pc.binary_length(problem).to_numpy(zero_copy_only=False)
    bounds[first[has_reply] + 1] = starts[has_reply] + user_length[has_reply]
    bounds[-1] = row_bounds[-1]
    content = pa.StringArray.from_buffers(
        len(bounds) - 1, pa.py_buffer(bounds), joined.buffers()[2]
    )
    which = np.zeros(len(bounds) - 1, dtype=np.int8)
    which[first[has_reply] + 1] = 1
    role = pa.array(["user", "assistant"]).take(pa.array(which))
    values = pa.StructArray.from_arrays([role, content], fields=list(MESSAGE))
    return pa.ListArray.from_arrays(pa.array(lists), values)


def _array(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values


def messages_derivable(names: list[str]) -> bool:
    """A table with these columns has no `messages` but could have (see `derive_missing`)."""
    return "messages" not in names and "problem" in names and bool({"think", "answer"} & set(names))


def with_messages(table: pa.Table) -> pa.Table:
    """`table` with a `messages` column where it has none and one can be derived (exports)."""
    columns = {name: table.column(name) for name in table.column_names}
    if not derive_missing(columns, table.num_rows) or "messages" not in columns:
        return table
    return table.append_column("messages", columns["messages"])
