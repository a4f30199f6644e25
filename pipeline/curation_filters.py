"""The filters of the curation operations (``pipeline.curation``), and the texts they read.

A filter is built from its operation's params (and what the filters of one run share) and
called on a pyarrow record batch; it returns one reason per row, ``None`` for a row it keeps. The texts come from :func:`field_texts`: a
column, or ``problem`` / ``think`` / ``answer`` / ``completion`` in whatever shape the rows
hold them (a ``messages`` chat, a tagged ``completion``, ``think`` and ``answer`` columns).

>>> batch = pa.RecordBatch.from_pylist([{"messages": [
...     {"role": "user", "content": "1+1?"},
...     {"role": "assistant", "content": "<think>one and one</think><answer>2</answer>"}]}])
>>> [field_texts(batch, f).to_pylist() for f in ("problem", "think", "answer")]
[['1+1?'], ['one and one'], ['2']]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.checks_text import CHARS_PER_TOKEN, code_blocks, longest_paragraph
from pipeline.dedup import BenchmarkIndex, ExactDuplicates, NearDuplicates, Tokens, group_hashes
from pipeline.rewards.accuracy import extract_answer, grade_batch
from pipeline.rewards.language import language_share
from pipeline.rewards.repetition import repeated_ngram_share
from pipeline.template import completion_text, parse_completion

ROW = "__curation_row"  # each row's number while it flows through the operations


class FieldError(LookupError):
    """A field the rows do not have; the running operation turns it into its own error, naming
    the param at fault (``field``; by default the operation's ``fields`` or ``field``)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class Selected:
    """A record batch with some of its rows left out, copied only as far as it is read: each
    filter that drops a row would otherwise copy every column of the batch (long reasoning,
    twice over where ``messages`` holds it too), though the next filter reads one or two of
    them. ``column`` takes the kept rows of one column (once); ``filter`` and ``materialise``
    give a real batch."""

    def __init__(self, batch: pa.RecordBatch, keep: np.ndarray | None = None) -> None:
        self.base, self.keep = batch, keep
        self.schema = batch.schema
        self.num_rows = batch.num_rows if keep is None else len(keep)
        self._columns: dict[str, pa.Array] = {}

    @classmethod
    def of(cls, batch: Any) -> Selected:
        return batch if isinstance(batch, Selected) else cls(batch)

    def column(self, name: str) -> pa.Array:
        if self.keep is None:
            return self.base.column(name)
        if name not in self._columns:
            self._columns[name] = self.base.column(name).take(pa.array(self.keep))
        return self._columns[name]

    def select(self, mask: np.ndarray) -> Selected:
        """The rows of this one where ``mask`` is true."""
        keep = np.flatnonzero(mask) if self.keep is None else self.keep[mask]
        return Selected(self.base, keep)

    def filter(self, mask: Any) -> pa.RecordBatch:
        return self.select(np.asarray(mask, bool)).materialise()

    def materialise(self) -> pa.RecordBatch:
        return self.base if self.keep is None else self.base.take(pa.array(self.keep))


def _texts(values: list[Any]) -> pa.Array:
    return pa.array(
        [completion_text(v) if not isinstance(v, str) else v for v in values], pa.string()
    )


def _column_texts(column: pa.Array) -> pa.Array:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return pc.fill_null(column, "")
    if pa.types.is_list(column.type) or pa.types.is_struct(column.type):
        return _texts(column.to_pylist())
    return pc.fill_null(pc.cast(column, pa.string()), "")


def _typed_messages(column: pa.Array, role: str) -> pa.Array | None:
    """``_messages`` for a list of ``{role, content}`` structs with text fields (the shape
    versions store), with Arrow kernels; None for any other shape."""
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        return None
    item = column.type.value_type
    if not pa.types.is_struct(item) or {item.field(i).name for i in range(item.num_fields)} != {
        "role",
        "content",
    }:
        return None
    if not all(pa.types.is_string(item.field(n).type) for n in ("role", "content")):
        return None
    flat = pc.list_flatten(column)  # a null list has no items; a null message is no match
    parents = pc.list_parent_indices(column).to_numpy()
    match = pc.fill_null(pc.equal(pc.struct_field(flat, "role"), role), False)
    if flat.null_count:
        match = pc.and_(match, pc.is_valid(flat))
    at = np.flatnonzero(match.to_numpy(zero_copy_only=False))
    owners = parents[at]
    # The last assistant message of a row, or its first user message.
    pick = np.ones(len(at), bool)
    if role == "assistant":
        pick[:-1] = owners[1:] != owners[:-1]
    else:
        pick[1:] = owners[1:] != owners[:-1]
    chosen = np.full(len(column), -1, np.int64)
    chosen[owners[pick]] = at[pick]
    indices = pa.array(chosen, mask=chosen < 0)
    contents = pc.struct_field(flat, "content").take(indices)
    return pc.fill_null(contents, "")


def _messages(column: pa.Array, role: str) -> pa.Array:
    typed = _typed_messages(column, role)
    if typed is not None:
        return typed
    texts = []
    for value in column.to_pylist():
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = []
        messages = [m for m in value or [] if isinstance(m, dict)]
        picked = [m for m in messages if m.get("role") == role]
        texts.append(completion_text(picked[-1:] if role == "assistant" else picked[:1]))
    return pa.array(texts, pa.string())


def field_texts(batch: pa.RecordBatch, name: str) -> pa.Array:
    """The text ``name`` of every row of ``batch`` (see the module docstring)."""
    names = batch.schema.names
    if name in names:
        return _column_texts(batch.column(name))
    if name == "completion":
        if "messages" in names:
            return _messages(batch.column("messages"), "assistant")
        parts = _completion_parts(batch)
        if parts is not None:
            return pc.binary_join_element_wise(*parts, "")
    elif name == "problem":
        if "prompt" in names:
            return _column_texts(batch.column("prompt"))
        if "messages" in names:
            return _messages(batch.column("messages"), "user")
    elif name in ("think", "answer") and any(c in names for c in ("completion", "messages")):
        completions = field_texts(batch, "completion").to_pylist()
        if name == "answer":
            return pa.array([extract_answer(c) or "" for c in completions], pa.string())
        thinks = [parse_completion(c).think for c in completions]
        return pa.array(
            [t if t is not None else c for t, c in zip(thinks, completions, strict=True)]
        )
    columns = ", ".join(n for n in names if n != ROW)
    raise FieldError(f"rows have no {name!r} (columns: {columns})")


def _completion_parts(batch: pa.RecordBatch) -> list[Any] | None:
    """A completion made of `think` and `answer` columns (when the rows have no `completion`
    or `messages`), as the pieces to concatenate: literal tags and the two columns."""
    names = batch.schema.names
    if "completion" in names or "messages" in names or not {"think", "answer"} & set(names):
        return None
    think = field_texts(batch, "think") if "think" in names else ""
    answer = field_texts(batch, "answer") if "answer" in names else ""
    return ["<think>\n", think, "\n</think>\n<answer>\n", answer, "\n</answer>"]


def joined_texts(batch: pa.RecordBatch, fields: Sequence[str]) -> pa.Array:
    """The ``fields`` of every row, joined by newlines."""
    if len(fields) == 1:
        return field_texts(batch, fields[0])
    # A completion from think/answer goes in as its pieces: each long text copied once, into
    # the joined one, not first into a completion of its own.
    parts: list[Any] = []
    for i, name in enumerate(fields):
        pieces = _completion_parts(batch) if name == "completion" else None
        parts += (["\n"] if i else []) + (pieces or [field_texts(batch, name)])
    return pc.binary_join_element_wise(*parts, "")


def _groups(batch: pa.RecordBatch, within: str) -> np.ndarray | None:
    if not within:
        return None
    if within not in batch.schema.names:
        names = ", ".join(n for n in batch.schema.names if n != ROW)
        raise FieldError(f"rows have no column {within!r} (columns: {names})", "within")
    return group_hashes(batch.column(within).to_pylist())


# ---------------------------------------------------------------------------------------------
# Filters: batch -> a reason per row (None: kept)

Check = Callable[[pa.RecordBatch], list[str | None]]


def _short(value: Any, limit: int = 40) -> str:
    text = " ".join(str(value).split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _verify(op: Any, shared: Shared) -> Check:
    def check(batch: pa.RecordBatch) -> list[str | None]:
        if op.reference not in batch.schema.names:
            raise FieldError(f"rows have no column {op.reference!r}", "reference")
        answers = field_texts(batch, "answer").to_pylist()
        references = batch.column(op.reference).to_pylist()
        scores = grade_batch(list(zip(references, answers, strict=True)), op.processes or None)
        reasons: list[str | None] = []
        for answer, reference, score in zip(answers, references, scores, strict=True):
            if score is None:
                unjudged = f"reference {_short(reference)} cannot be read: not judged"
                reasons.append(None if op.keep_unjudged else unjudged)
            elif score < 1:
                reasons.append(f"answer {_short(answer)} is not the reference {_short(reference)}")
            else:
                reasons.append(None)
        return reasons

    return check


def _per_text(field: str, judge: Callable[[str], str | None]) -> Check:
    return lambda batch: [judge(text) for text in field_texts(batch, field).to_pylist()]


def _language(op: Any, shared: Shared) -> Check:
    def judge(text: str) -> str | None:
        share = language_share(text, op.language)
        if share >= op.min_share:
            return None
        return f"{share:.0%} of the words are in {op.language} (needs {op.min_share:.0%})"

    return _per_text(op.field, judge)


def _long_paragraphs(op: Any, shared: Shared) -> Check:
    def judge(text: str) -> str | None:
        longest = longest_paragraph(text)
        if longest <= op.max_chars:
            return None
        return f"a paragraph of {longest:,} characters (max {op.max_chars:,})"

    return _per_text(op.field, judge)


def _code_blocks(op: Any, shared: Shared) -> Check:
    def check(batch: pa.RecordBatch) -> list[str | None]:
        texts = field_texts(batch, op.field)
        maybe = pc.or_(pc.match_substring(texts, "```"), pc.match_substring(texts, "~~~"))
        reasons: list[str | None] = [None] * len(texts)
        for i in np.flatnonzero(maybe.to_numpy(zero_copy_only=False)).tolist():
            blocks = code_blocks(texts[i].as_py())
            if blocks:
                reasons[i] = f"{blocks} code block{'s' if blocks > 1 else ''} in the reasoning"
        return reasons

    return check


def _length(op: Any, shared: Shared) -> Check:
    tokenizer = None
    if op.tokenizer:
        from pipeline.stages.common import load_tokenizer

        tokenizer = load_tokenizer(op.tokenizer)

    def check(batch: pa.RecordBatch) -> list[str | None]:
        texts = field_texts(batch, op.field)
        if tokenizer is not None:
            ids = tokenizer(texts.to_pylist(), add_special_tokens=False)["input_ids"]
            counts, unit = [len(x) for x in ids], "tokens"
        else:
            chars = pc.utf8_length(texts).to_numpy(zero_copy_only=False)
            counts, unit = (-(-chars // CHARS_PER_TOKEN)).tolist(), "tokens (chars / 4)"
        reasons: list[str | None] = []
        for n in counts:
            if op.max_tokens and n > op.max_tokens:
                reasons.append(f"{n:,} {unit}, over {op.max_tokens:,}")
            elif n < op.min_tokens:
                reasons.append(f"{n:,} {unit}, under {op.min_tokens:,}")
            else:
                reasons.append(None)
        return reasons

    return check


def _repetition(op: Any, shared: Shared) -> Check:
    def judge(text: str) -> str | None:
        share = repeated_ngram_share(text, op.ngram_size)
        if share <= op.max_share:
            return None
        return f"{share:.0%} of its word {op.ngram_size}-grams repeat (max {op.max_share:.0%})"

    return _per_text(op.field, judge)


class Shared:
    """What the filters of one run share: the tokens of the last batch a dedup cut, so that a
    near dedup after an exact one on the same fields selects the rows the exact one kept
    instead of cutting their texts again (the costliest step of both)."""

    def __init__(self) -> None:
        self.fields: tuple[str, ...] = ()
        self.rows = np.zeros(0, np.int64)
        self.tokens: Tokens | None = None

    def tokens_of(self, batch: pa.RecordBatch, fields: Sequence[str]) -> Tokens:
        rows = batch.column(ROW).to_numpy()
        if self.tokens is not None and tuple(fields) == self.fields and len(self.rows):
            at = np.minimum(np.searchsorted(self.rows, rows), len(self.rows) - 1)
            if np.array_equal(self.rows[at], rows):
                return self.tokens.select(at)
        self.fields, self.rows = tuple(fields), rows
        self.tokens = Tokens.of(joined_texts(batch, fields))
        return self.tokens


def _dedup(op: Any, shared: Shared) -> Check:
    if op.op == "near_dedup":
        checker: Any = NearDuplicates(op.threshold, op.num_perm, op.ngram)
        kind = "near duplicate"
    else:
        checker, kind = ExactDuplicates(), "exact duplicate"

    def check(batch: pa.RecordBatch) -> list[str | None]:
        rows = batch.column(ROW).to_numpy()
        tokens = shared.tokens_of(batch, op.fields)
        earlier = checker.check(tokens, rows, _groups(batch, op.within))
        return [None if e < 0 else f"{kind} of row {e}" for e in earlier.tolist()]

    return check


def _decontaminate(op: Any, shared: Shared) -> Check:
    index = BenchmarkIndex(op.benchmarks, op.ngram)

    def check(batch: pa.RecordBatch) -> list[str | None]:
        hits = index.check(joined_texts(batch, op.fields))
        return [None if h is None else f"overlaps {index.describe(h)}" for h in hits]

    return check


FILTERS: dict[str, Callable[[Any, Shared], Check]] = {
    "verify": _verify,
    "language": _language,
    "long_paragraphs": _long_paragraphs,
    "code_blocks": _code_blocks,
    "length": _length,
    "repetition": _repetition,
    "exact_dedup": _dedup,
    "near_dedup": _dedup,
    "decontaminate": _decontaminate,
}
