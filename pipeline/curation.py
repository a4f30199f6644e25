"""Curation operations on dataset rows: the R1 rejection filters, duplicates, decontamination,
mixing, sampling and a train/validation split. The studio's curation jobs and the ``generate``
stage share them; no Django here.

An operation is a dict ``{"op": name, ...params}``; :data:`OPERATIONS` maps each name to its
model (the params with their defaults and one line of help each, as the web form shows them).
:func:`apply_operations` streams rows (pyarrow record batches, tables or lists of dicts)
through a list of them in order and returns the kept rows, the dropped rows with the step that
dropped each and why (columns ``reason``, ``detail``, ``input_row``) and the funnel
``[{step, op, rows_in, rows_out, dropped}]`` (``added`` too for a mix).

Filters look at a row's *fields*: a column of that name, or, for ``problem``, ``think``,
``answer`` and ``completion``, what the row holds in another shape (a ``messages`` chat, a
``completion`` with ``<think>``/``<answer>`` tags, or ``think`` and ``answer`` columns).
Rows are numbered as they come in (0, 1, ...; rows a mix adds are numbered after them): a
duplicate names the row it repeats. ``sample``, ``split`` and ``mix`` need every row before
they choose, so the rows up to them are gathered (as Arrow, not Python objects).

>>> kept, dropped, funnel = apply_operations(
...     [[{"problem": "1+1?", "think": "1 and 1 make 2", "answer": "2", "reference": "2"},
...       {"problem": "1+1?", "think": "1 and 1 make 2", "answer": "2", "reference": "2"},
...       {"problem": "2+2?", "think": "```py\\nprint(4)\\n```", "answer": "4", "reference": "4"}]],
...     [{"op": "exact_dedup"}, {"op": "code_blocks"}])
>>> kept.num_rows, dropped.column("detail").to_pylist()
(1, ['exact duplicate of row 0', '1 code block in the reasoning'])
>>> [(s["step"], s["rows_in"], s["rows_out"]) for s in funnel]
[('exact_dedup', 3, 2), ('code_blocks', 2, 1)]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import pyarrow as pa
from pydantic import ValidationError, field_validator, model_validator

from pipeline.checks_text import LANGUAGE_CONSISTENT
from pipeline.config_sections import MAX_ROWS, MAX_SEED, MAX_TOKENS, _f, _Section
from pipeline.curation_filters import FILTERS, ROW, FieldError, Selected, Shared
from pipeline.data import PRESET_FILES
from pipeline.rewards.language import LANGUAGE_SCRIPTS

# Rows an operation sees at a time: few enough that the arrays each batch needs (tens of MB at
# 8k rows of long reasoning) are reused by the allocators instead of mapped afresh, which costs
# more than the work on them.
BATCH_ROWS = 1024


class OperationError(ValueError):
    """An operation that cannot run as given; the message names it (its number, counting from
    1, and its op) and the field at fault."""

    def __init__(self, message: str, index: int | None = None, op: str = "", field: str = ""):
        self.index, self.op, self.field = index, op, field
        where = "" if index is None else f"operation {index + 1}" + (f" ({op})" if op else "")
        where += f"{', ' if where else ''}{field}" if field else ""
        super().__init__(f"{where}: {message}" if where else message)


# ---------------------------------------------------------------------------------------------
# The operations and their params


def _field_help(default: str) -> Any:
    return _f(default, "Text to look at: a column, or problem / think / answer / completion.")


def _fields_help(default: list[str]) -> Any:
    return _f(default, "Texts compared, joined: columns, or problem / think / answer / completion.")


def _within_help() -> Any:
    return _f("", "Only compare rows with the same value in this column (empty: all rows).", True)


class VerifyOp(_Section):
    """Keep rows whose answer math-verify finds equal to the reference (R1's rule verifier)."""

    op: Literal["verify"]
    reference: str = _f("reference", "Column holding the reference answer.")
    keep_unjudged: bool = _f(False, "Keep rows whose reference cannot be read (not judged).")
    processes: int = _f(1, "Grading processes (0: all cores).", True, ge=0, le=256)


class LanguageOp(_Section):
    """Drop reasoning that mixes languages (share of words in the target language's script)."""

    op: Literal["language"]
    language: str = _f("en", f"Target language: {', '.join(sorted(LANGUAGE_SCRIPTS))}.")
    min_share: float = _f(LANGUAGE_CONSISTENT, "Share of words in it needed to stay.", ge=0, le=1)
    field: str = _field_help("think")

    @field_validator("language")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in LANGUAGE_SCRIPTS:
            raise ValueError(f"unknown language; known: {', '.join(sorted(LANGUAGE_SCRIPTS))}")
        return value


class LongParagraphsOp(_Section):
    """Drop reasoning with a paragraph (text between blank lines) longer than max_chars."""

    op: Literal["long_paragraphs"]
    max_chars: int = _f(3000, "Longest paragraph allowed, in characters.", ge=1, le=10**9)
    field: str = _field_help("think")


class CodeBlocksOp(_Section):
    """Drop reasoning that holds a fenced (``` or ~~~) code block."""

    op: Literal["code_blocks"]
    field: str = _field_help("think")


class LengthOp(_Section):
    """Drop rows longer (or shorter) than a number of tokens."""

    op: Literal["length"]
    max_tokens: int = _f(16384, "Longest allowed, in tokens (0: no maximum).", ge=0, le=MAX_TOKENS)
    min_tokens: int = _f(0, "Shortest allowed, in tokens.", True, ge=0, le=MAX_TOKENS)
    tokenizer: str = _f("", "Model folder whose tokenizer counts (empty: characters / 4).")
    field: str = _field_help("completion")


class RepetitionOp(_Section):
    """Drop rows whose share of repeated word n-grams is above max_share (looping text)."""

    op: Literal["repetition"]
    max_share: float = _f(0.3, "Highest share of repeated word n-grams allowed.", ge=0, le=1)
    ngram_size: int = _f(3, "Words per n-gram.", True, ge=1, le=100)
    field: str = _field_help("completion")


class ExactDedupOp(_Section):
    """Drop rows whose text repeats an earlier row's, whitespace aside."""

    op: Literal["exact_dedup"]
    fields: list[str] = _fields_help(["problem", "completion"])
    within: str = _within_help()


class NearDedupOp(_Section):
    """Drop near duplicates of earlier rows: MinHash LSH over shingles of tokens."""

    op: Literal["near_dedup"]
    fields: list[str] = _fields_help(["problem", "completion"])
    threshold: float = _f(0.8, "Jaccard similarity at which rows count as duplicates.", gt=0, le=1)
    num_perm: int = _f(128, "MinHash size: more is more exact and slower.", True, ge=16, le=1024)
    ngram: int = _f(5, "Tokens per shingle.", True, ge=1, le=1000)
    within: str = _within_help()


class DecontaminateOp(_Section):
    """Drop rows that share a word n-gram with a benchmark problem (or equal a short one)."""

    op: Literal["decontaminate"]
    benchmarks: list[str] = _f(list(PRESET_FILES), "Benchmarks (presets or files) to check.")
    ngram: int = _f(8, "Words per n-gram.", ge=1, le=1000)
    fields: list[str] = _fields_help(["problem"])


class MixPart(_Section):
    version: int | Literal["input"] = _f(
        "input", "A dataset version id, or 'input' (the rows so far)."
    )
    ratio: float = _f(1.0, "Its share of the result, relative to the other parts.", gt=0, le=10**9)


class MixOp(_Section):
    """Mix the rows so far with other versions in given ratios (e.g. 3:1 reasoning to
    non-reasoning); each part's rows are sampled (seeded), keeping their order."""

    op: Literal["mix"]
    parts: list[MixPart] = _f([], "The parts, the input among them once.", min_length=1)
    rows: int = _f(0, "Rows in the result (0: as many as the ratios allow).", ge=0, le=MAX_ROWS)
    seed: int = _f(0, "Random seed.", True, ge=0, le=MAX_SEED)

    @field_validator("parts")
    @classmethod
    def _input_once(cls, parts: list[MixPart]) -> list[MixPart]:
        if sum(1 for p in parts if p.version == "input") != 1:
            raise ValueError('list the input once, as {"version": "input", "ratio": ...}')
        return parts


class _Count(_Section):
    n: int = _f(0, "A number of rows (or give fraction).", ge=0, le=MAX_ROWS)
    fraction: float = _f(0.0, "A share of the rows, 0-1 (or give n).", ge=0, le=1)
    seed: int = _f(0, "Random seed.", True, ge=0, le=MAX_SEED)

    @model_validator(mode="after")
    def _one_of(self) -> Any:
        if bool(self.n) == bool(self.fraction):
            raise ValueError("give either n or fraction")
        return self

    def of(self, rows: int) -> int:
        return min(rows, self.n or round(self.fraction * rows))


class SampleOp(_Count):
    """Keep a seeded random sample of n rows (or a fraction of them), in their order."""

    op: Literal["sample"]


class SplitOp(_Count):
    """Add a `split` column: n rows (or a fraction) chosen at random are `validation`, the
    rest `train`."""

    op: Literal["split"]


OPERATIONS: dict[str, type[_Section]] = {
    "verify": VerifyOp,
    "language": LanguageOp,
    "long_paragraphs": LongParagraphsOp,
    "code_blocks": CodeBlocksOp,
    "length": LengthOp,
    "repetition": RepetitionOp,
    "exact_dedup": ExactDedupOp,
    "near_dedup": NearDedupOp,
    "decontaminate": DecontaminateOp,
    "mix": MixOp,
    "sample": SampleOp,
    "split": SplitOp,
}


def parse_operations(operations: Any) -> list[Any]:
    """The operations as models; an :class:`OperationError` names the first bad one.

    >>> try:
    ...     parse_operations([{"op": "sample", "n": 10}, {"op": "near_dedup", "threshold": 2}])
    ... except OperationError as exc:
    ...     print(exc)
    operation 2 (near_dedup), threshold: Input should be less than or equal to 1
    """
    if not isinstance(operations, list | tuple) or not operations:
        raise OperationError("operations must be a non-empty list")
    parsed = []
    for i, spec in enumerate(operations):
        if isinstance(spec, _Section):
            parsed.append(spec)
            continue
        op = spec.get("op") if isinstance(spec, dict) else None
        if not isinstance(op, str):
            raise OperationError('each operation is {"op": name, ...params}', i, field="op")
        if op not in OPERATIONS:
            raise OperationError(
                f"unknown op {op!r}; known: {', '.join(OPERATIONS)}", i, field="op"
            )
        try:
            parsed.append(OPERATIONS[op].model_validate(spec))
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            raise OperationError(message, i, op, field) from None
    return parsed


def filter_rows(rows: list[dict], operation: dict) -> list[str | None]:
    """One filter on a few rows (dicts): the reason each is dropped, or None when kept.

    >>> filter_rows([{"think": "a\\n\\n" + "b" * 50}], {"op": "long_paragraphs", "max_chars": 40})
    ['a paragraph of 50 characters (max 40)']
    """
    [op] = parse_operations([operation])
    if op.op not in FILTERS:
        raise OperationError("not a filter: it needs the whole dataset", 0, op.op)
    batch = pa.RecordBatch.from_pylist(rows)
    batch = batch.append_column(ROW, pa.array(range(len(rows)), pa.int64()))
    return FILTERS[op.op](op, Shared())(batch)


# ---------------------------------------------------------------------------------------------
# Operations that need all the rows: sample, split, mix


class _Run:
    """One apply_operations call: row numbering, the dropped rows, other versions."""

    def __init__(self, versions: Callable[[int], Any] | None) -> None:
        self.versions = versions
        self.next_row = 0
        self.schema: pa.Schema | None = None
        self.dropped: list[pa.RecordBatch | pa.Table] = []
        self.shared = Shared()

    def number(self, table: Any) -> Any:
        """``table`` (a batch or a table) with its rows numbered on from the last."""
        n = table.num_rows
        rows = pa.array(np.arange(self.next_row, self.next_row + n, dtype=np.int64))
        self.next_row += n
        if ROW in table.schema.names:
            table = table.drop_columns([ROW])
        return table.append_column(ROW, rows)

    def drop(self, table: Any, mask: np.ndarray, step: str, details: Sequence[str | None]) -> None:
        if not mask.any():
            return
        kept_details = [d for d, m in zip(details, mask.tolist(), strict=True) if m]
        part = table.filter(pa.array(mask))
        for name in ("reason", "detail"):
            if name in part.schema.names:
                part = part.drop_columns([name])
        part = part.append_column("reason", pa.array([step] * len(kept_details), pa.string()))
        self.dropped.append(part.append_column("detail", pa.array(kept_details, pa.string())))


def _choose(rows: int, k: int, seed: Any) -> np.ndarray:
    """``k`` of ``rows`` row indices, seeded, in order."""
    return np.sort(np.random.default_rng(seed).choice(rows, size=k, replace=False))


def _sample(op: SampleOp, table: pa.Table, run: _Run, step: str, index: int) -> pa.Table:
    k = op.of(table.num_rows)
    keep = np.zeros(table.num_rows, bool)
    keep[_choose(table.num_rows, k, op.seed)] = True
    detail = f"not among the {k:,} of {table.num_rows:,} rows sampled (seed {op.seed})"
    run.drop(table, ~keep, step, [detail] * table.num_rows)
    return table.filter(pa.array(keep))


def _split(op: SplitOp, table: pa.Table, run: _Run, step: str, index: int) -> pa.Table:
    k = op.of(table.num_rows)
    split = np.full(table.num_rows, "train", dtype=object)
    split[np.random.default_rng(op.seed).permutation(table.num_rows)[:k]] = "validation"
    if "split" in table.schema.names:
        table = table.drop_columns(["split"])
    return table.append_column("split", pa.array(split.tolist(), pa.string()))


def _apportion(total: int, shares: list[float]) -> list[int]:
    """``total`` split by ``shares`` into whole numbers that add up (largest remainders)."""
    exact = [total * s for s in shares]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: counts[i] - exact[i])
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _mix(op: MixOp, table: pa.Table, run: _Run, step: str, index: int) -> pa.Table:
    tables = []
    for j, part in enumerate(op.parts):
        if part.version == "input":
            tables.append(table)
        elif run.versions is None:
            raise OperationError("no versions to mix from here", index, op.op, f"parts.{j}.version")
        else:
            try:
                tables.append(run.versions(part.version))
            except LookupError as exc:
                raise OperationError(str(exc), index, op.op, f"parts.{j}.version") from None
    total_ratio = sum(p.ratio for p in op.parts)
    shares = [p.ratio / total_ratio for p in op.parts]
    total = op.rows or min(
        math.floor(t.num_rows / s + 1e-9) for t, s in zip(tables, shares, strict=True)
    )
    counts = _apportion(total, shares)
    picked = []
    for j, (part, part_table, k) in enumerate(zip(op.parts, tables, counts, strict=True)):
        if k > part_table.num_rows:
            name = "the input" if part.version == "input" else f"version {part.version}"
            need = f"{name} has {part_table.num_rows:,} rows; {total:,} at these ratios need {k:,}"
            raise OperationError(need, index, op.op, f"parts.{j}")
        keep = np.zeros(part_table.num_rows, bool)
        keep[_choose(part_table.num_rows, k, [op.seed, j])] = True
        if part.version == "input":
            detail = f"left out by the ratios ({k:,} of {part_table.num_rows:,} input rows taken)"
            run.drop(part_table, ~keep, step, [detail] * part_table.num_rows)
            picked.append(part_table.filter(pa.array(keep)))
        else:
            picked.append(run.number(part_table.filter(pa.array(keep))))
    try:
        return pa.concat_tables(picked, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        message = f"the parts' columns do not fit: {exc}"
        raise OperationError(message, index, op.op, "parts") from None


GATHERING = {"sample": _sample, "split": _split, "mix": _mix}


# ---------------------------------------------------------------------------------------------
# Running a list of operations


class CurationResult(NamedTuple):
    kept: pa.Table
    dropped: pa.Table
    funnel: list[dict[str, Any]]


def _as_batches(item: Any) -> Iterator[pa.RecordBatch]:
    if isinstance(item, pa.RecordBatch):
        yield item
    elif isinstance(item, pa.Table):
        yield from item.to_batches(max_chunksize=BATCH_ROWS)
    else:  # a list of dicts
        yield pa.RecordBatch.from_pylist(list(item))


def _step_names(ops: list[Any]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for op in ops:
        seen[op.op] = seen.get(op.op, 0) + 1
        names.append(op.op if seen[op.op] == 1 else f"{op.op} #{seen[op.op]}")
    return names


def apply_operations(
    batches: Iterable[Any],
    operations: Sequence[Any],
    *,
    versions: Callable[[int], Any] | None = None,
    schema: pa.Schema | None = None,
    progress: Callable[[int, str], None] | None = None,
) -> CurationResult:
    """Run ``operations`` over the rows in ``batches`` (see the module docstring).

    ``versions(id)`` gives another dataset version's rows as a pyarrow table (for ``mix``);
    ``schema`` the input's columns when there may be no rows; ``progress(rows_read, message)``
    is called after each input batch. Raises :class:`OperationError` naming the operation.
    """
    ops = parse_operations(list(operations))
    run = _Run(versions)
    funnel: list[dict[str, Any]] = []

    def source() -> Iterator[pa.RecordBatch]:
        for item in batches:
            for batch in _as_batches(item):
                run.schema = run.schema or batch.schema
                for start in range(0, batch.num_rows, BATCH_ROWS):
                    yield run.number(batch.slice(start, BATCH_ROWS))
                if progress is not None:
                    progress(run.next_row, f"{run.next_row:,} rows read")

    stream: Iterator[Any] = source()
    for index, (op, step) in enumerate(zip(ops, _step_names(ops), strict=True)):
        entry = {"step": step, "op": op.op, "rows_in": 0, "rows_out": 0, "dropped": 0}
        funnel.append(entry)
        if op.op in GATHERING:
            stream = _gathering(op, stream, run, entry, index, schema)
        else:
            stream = _filtering(op, stream, run, entry, index)
    kept_parts = [_batch(b) for b in stream if b.num_rows]
    kept = _table(kept_parts, run.schema or schema)
    dropped = _table(run.dropped, None)
    if ROW in dropped.schema.names:
        dropped = dropped.rename_columns(
            ["input_row" if c == ROW else c for c in dropped.column_names]
        )
    return CurationResult(
        kept.drop_columns([ROW]) if ROW in kept.schema.names else kept, dropped, funnel
    )


def _batch(item: Any) -> pa.RecordBatch:
    return item.materialise() if isinstance(item, Selected) else item


def _table(parts: list[Any], schema: pa.Schema | None) -> pa.Table:
    if not parts:
        return schema.empty_table() if schema is not None else pa.table({})
    tables = [pa.Table.from_batches([p]) if isinstance(p, pa.RecordBatch) else p for p in parts]
    return pa.concat_tables(tables, promote_options="permissive")


def _filtering(op: Any, stream: Iterator[Any], run: _Run, entry: dict, index: int) -> Iterator[Any]:
    try:
        check = FILTERS[op.op](op, run.shared)
    except (OSError, ValueError) as exc:
        raise OperationError(str(exc), index, op.op) from None
    for item in stream:
        batch = Selected.of(item)  # the kept rows are copied only when read (see Selected)
        entry["rows_in"] += batch.num_rows
        try:
            reasons = check(batch) if batch.num_rows else []
        except FieldError as exc:
            field = exc.field or ("fields" if hasattr(op, "fields") else "field")
            raise OperationError(str(exc), index, op.op, field) from None
        dropped = np.array([r is not None for r in reasons], bool)
        run.drop(batch, dropped, entry["step"], reasons)
        entry["dropped"] += int(dropped.sum())
        kept = batch.select(~dropped) if dropped.any() else batch
        entry["rows_out"] += kept.num_rows
        yield kept


def _gathering(
    op: Any, stream: Iterator[Any], run: _Run, entry: dict, index: int, schema: pa.Schema | None
) -> Iterator[Any]:
    table = _table([_batch(b) for b in stream if b.num_rows], run.schema or schema)
    if ROW not in table.schema.names:
        table = table.append_column(ROW, pa.array([], pa.int64()))
    before = len(run.dropped)
    out = GATHERING[op.op](op, table, run, entry["step"], index)
    dropped = sum(part.num_rows for part in run.dropped[before:])
    entry.update(rows_in=table.num_rows, rows_out=out.num_rows, dropped=dropped)
    if op.op == "mix":
        entry["added"] = out.num_rows - (table.num_rows - dropped)
    yield from out.to_batches(max_chunksize=BATCH_ROWS)
