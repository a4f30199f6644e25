"""Datasets for the stages: local files, generate-stage outputs, benchmark presets, hub ids.

Everything comes back as a ``datasets.Dataset``. Problems get the normalised columns ``problem``
and ``answer`` (what the rewards read); SFT examples get ``prompt`` and ``completion`` strings
rendered with the same prompt builder the RL and sampling stages use, so a model is trained on
exactly the context it later sees.

Benchmark presets read the files in ``$R1STUDIO_BENCHMARKS_DIR`` (default
``<repo>/../shared/benchmarks``) and normalise them: GSM8K's answer is the text after ``####``
with thousands separators dropped, AIME answers stay strings (``025``), AMC's float answers
become integer strings, HumanEval keeps ``test`` and ``entry_point`` for the code reward.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pipeline.template import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    THINK_CLOSE,
    THINK_OPEN,
    make_conversation,
    render_prompt,
)

PRESET_FILES = {
    "math500": "math500.jsonl",
    "aime24": "aime24.jsonl",
    "amc23": "amc23.jsonl",
    "gsm8k": "gsm8k_test.jsonl",
    "humaneval": "humaneval.jsonl",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# A studio dataset version (`dataset:NAME@N`, or `dataset:NAME` for the latest): a name the
# studio resolves to the version's Parquet file when the run starts, never a file here.
DATASET_REF = "dataset:"


class DataError(ValueError):
    """A dataset that cannot be used; the message says which and why."""


def benchmarks_dir() -> Path:
    """Where the benchmark preset files live."""
    env = os.environ.get("R1STUDIO_BENCHMARKS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks"


def looks_like_hub_id(source: str) -> bool:
    """``org/name`` that is not a path on this machine: treated as a Hugging Face hub id."""
    return bool(_HUB_ID.match(source)) and not Path(source).exists()


def is_dataset_ref(source: str) -> bool:
    """``dataset:NAME@N`` (or ``dataset:NAME``): a studio dataset version, not a path."""
    return isinstance(source, str) and source.startswith(DATASET_REF)


def dataset_ref_error(source: str) -> str:
    """Why a stage cannot read an unresolved ``dataset:`` reference."""
    return (
        f"{source} is a studio dataset version: the studio resolves it to its Parquet file "
        "when it starts the run; run it from the studio, or give the Parquet file's path"
    )


def source_kind(source: str) -> str:
    """``dataset`` (a studio reference, see ``DATASET_REF``), ``local``, ``preset``, ``hub`` or
    ``missing`` (a path-like source that does not exist)."""
    if is_dataset_ref(source):
        return "dataset"
    if Path(source).expanduser().exists():
        return "local"
    if source in PRESET_FILES:
        return "preset"
    if looks_like_hub_id(source) and not source.startswith((".", "/", "~")):
        return "hub"
    return "missing"


# ---------------------------------------------------------------------------------------------
# Raw loading


def read_rows(path: str | os.PathLike) -> list[dict]:
    """Rows of a JSONL (or JSON list) file."""
    text = Path(path).read_text()
    if text.lstrip().startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_source(source: str, split: str = "train") -> Any:
    """Load a dataset from a file, a folder, a preset or the hub, without normalising it."""
    import datasets

    kind = source_kind(source)
    if kind == "preset":
        return load_benchmark(source)
    if kind == "hub":
        return datasets.load_dataset(source, split=split)
    if kind == "missing":
        raise DataError(f"no such file or folder: {source}")
    if kind == "dataset":
        raise DataError(dataset_ref_error(source))
    path = Path(source).expanduser()
    if path.is_dir():
        return _load_folder(path, split)
    return _load_file(path)


def _load_file(path: Path) -> Any:
    import datasets

    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return datasets.Dataset(pq.read_table(path))
    if path.suffix in (".jsonl", ".json"):
        rows = read_rows(path)
        return datasets.Dataset.from_list(rows) if rows else datasets.Dataset.from_dict({})
    raise DataError(f"{path}: unsupported file type (use .jsonl, .json or .parquet)")


def _load_folder(path: Path, split: str) -> Any:
    import datasets

    if any((path / name).exists() for name in ("state.json", "dataset_dict.json")):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise DataError(f"{path} has no split {split!r} (it has {', '.join(loaded)})")
            return loaded[split]
        return loaded
    for pattern in ("data.parquet", "*.parquet", "data.jsonl", "*.jsonl"):
        files = sorted(path.glob(pattern))
        if files:
            parts = [_load_file(f) for f in files]
            return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    raise DataError(f"{path}: no dataset in this folder (no save_to_disk files, Parquet or JSONL)")


# ---------------------------------------------------------------------------------------------
# Benchmarks

_DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


def benchmark_label(name: str, path: str = "") -> str:
    """The short name a benchmark goes by in metric names and on the Benchmarks page.

    A preset or a label keeps its name; a file, folder or hub id gives its last part without
    the extension, so a metric reads ``eval/heldout/pass@1``, never a whole path.

    >>> benchmark_label("toy-heldout", "/data/heldout.jsonl"), benchmark_label("data/gsm.jsonl")
    ('toy-heldout', 'gsm')
    """
    source = (name or path or "").strip()
    path_like = any(c in source for c in "/\\") or source.lower().endswith(_DATA_SUFFIXES)
    if not path_like or source in PRESET_FILES:
        return source or "benchmark"
    last = source.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return (Path(last).stem if last.lower().endswith(_DATA_SUFFIXES) else last) or "benchmark"


def load_benchmark(
    name: str,
    path: str = "",
    problem_column: str = "problem",
    answer_column: str = "answer",
    limit: int = 0,
) -> Any:
    """A benchmark with ``problem`` and ``answer`` columns (plus the preset's extras).

    ``name`` is a preset, or, without a ``path``, the benchmark's own file or folder.
    """
    import datasets

    if not path and name not in PRESET_FILES:
        path = name
    if path:
        dataset = load_source(path)
        rows = [_mapped(r, problem_column, answer_column) for r in dataset]
    else:
        file = benchmarks_dir() / PRESET_FILES[name]
        if not file.exists():
            raise DataError(
                f"benchmark file {file} is missing (set R1STUDIO_BENCHMARKS_DIR to its folder)"
            )
        rows = [_normalise_preset(name, r) for r in read_rows(file)]
    if limit:
        rows = rows[:limit]
    return datasets.Dataset.from_list(rows)


def _mapped(row: dict, problem_column: str, answer_column: str) -> dict:
    for column in (problem_column, answer_column):
        if column not in row:
            raise DataError(f"column {column!r} is missing (columns: {', '.join(row)})")
    out = {k: v for k, v in row.items() if k not in ("problem", "answer", "prompt")}
    out["problem"] = str(row[problem_column])
    out["answer"] = _answer_text(row[answer_column])
    return out


def _answer_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _normalise_preset(name: str, row: dict) -> dict:
    if name == "gsm8k":
        final = row["answer"].rsplit("####", 1)[-1].strip()
        if re.fullmatch(r"[-+]?[\d,]*\.?\d+", final):
            final = final.replace(",", "")
        return {"problem": row["question"], "answer": final, "solution": row["answer"]}
    if name == "humaneval":
        return {
            "problem": row["prompt"],
            "answer": row["canonical_solution"],
            "test": row["test"],
            "entry_point": row["entry_point"],
            "task_id": row["task_id"],
        }
    out = {"problem": row["problem"], "answer": _answer_text(row["answer"])}
    for key in ("id", "unique_id", "subject", "level", "solution"):
        if key in row:
            out[key] = row[key]
    return out


# ---------------------------------------------------------------------------------------------
# Stage inputs


def load_problems(section: Any, require_answer: bool = False) -> Any:
    """Problems of a ``DataSection`` with the mapped columns renamed to ``problem``/``answer``."""
    dataset = load_source(section.source, section.split)
    if section.limit:
        dataset = dataset.select(range(min(section.limit, len(dataset))))
    columns = dataset.column_names
    if section.problem_column not in columns:
        raise DataError(
            f"data.problem_column: column {section.problem_column!r} is not in {section.source} "
            f"(columns: {', '.join(columns)})"
        )
    if require_answer and section.answer_column not in columns:
        raise DataError(
            f"data.answer_column: column {section.answer_column!r} is not in {section.source} "
            f"(columns: {', '.join(columns)}); the accuracy reward needs reference answers"
        )
    mapping = {section.problem_column: "problem"}
    if section.answer_column in columns:
        mapping[section.answer_column] = "answer"
    for old, new in mapping.items():
        if old != new:
            if new in dataset.column_names:
                dataset = dataset.remove_columns(new)
            dataset = dataset.rename_column(old, new)
    if "answer" in dataset.column_names:
        dataset = dataset.map(lambda r: {"answer": _answer_text(r["answer"])})
    return dataset


def build_prompt(tokenizer: Any, problem: str, prompt: Any) -> str:
    """The prompt text for one problem under a ``PromptSection``.

    With a chat template: optional system message, the user message from ``prompt_template``,
    the generation prompt. Without: system prompt and template text. ``prefill_think`` appends
    ``<think>`` unless the template already did.
    """
    user = render_prompt(problem, prompt.prompt_template)
    return render_messages(tokenizer, make_conversation(user, prompt.system_prompt), prompt)


def render_messages(tokenizer: Any, messages: list[dict], prompt: Any) -> str:
    """Render chat messages as the prompt text the model continues."""
    if prompt.use_chat_template and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        text = _strip_auto_bos(tokenizer, text)
    else:
        text = "\n".join(m["content"] for m in messages)
    if prompt.prefill_think and not text.rstrip().endswith(THINK_OPEN):
        text += THINK_OPEN
    return text


def _strip_auto_bos(tokenizer: Any, text: str) -> str:
    # Templates that write the BOS token, with a tokenizer that also adds one on encode, would
    # give the model two BOS tokens: keep the tokenizer's.
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos):
        ids = tokenizer("x")["input_ids"]
        if ids and ids[0] == tokenizer.bos_token_id:
            return text[len(bos) :]
    return text


def load_sft_examples(section: Any, tokenizer: Any) -> Any:
    """``prompt``/``completion`` text pairs for SFT from messages or problem+completion data."""
    import datasets

    raw = load_source(section.source, section.split)
    if section.limit:
        raw = raw.select(range(min(section.limit, len(raw))))
    columns = raw.column_names
    rows = []
    if section.messages_column in columns:
        for row in raw:
            messages = _messages(row[section.messages_column])
            if not messages or messages[-1].get("role") != "assistant":
                continue
            context = [dict(m) for m in messages[:-1]]
            if section.system_prompt and not any(m["role"] == "system" for m in context):
                context.insert(0, {"role": "system", "content": section.system_prompt})
            completion = messages[-1]["content"]
            rows.append(_pair(render_messages(tokenizer, context, section), completion, section))
    elif section.completion_column in columns and section.problem_column in columns:
        for row in raw:
            prompt = build_prompt(tokenizer, str(row[section.problem_column]), section)
            rows.append(_pair(prompt, str(row[section.completion_column]), section))
    elif section.problem_column in columns and {"think", section.answer_column} <= set(columns):
        for row in raw:
            prompt = build_prompt(tokenizer, str(row[section.problem_column]), section)
            completion = think_answer_text(row["think"], row[section.answer_column])
            rows.append(_pair(prompt, completion, section))
    elif len(raw) > 0:
        raise DataError(
            f"data.source: {section.source} has neither a {section.messages_column!r} column nor "
            f"{section.problem_column!r} + {section.completion_column!r} columns nor "
            f"{section.problem_column!r} + 'think' + {section.answer_column!r} columns "
            f"(columns: {', '.join(columns)})"
        )
    return datasets.Dataset.from_list(rows) if rows else datasets.Dataset.from_dict({})


def _messages(value: Any) -> list[dict]:
    # Parquet keeps chat messages as a list of structs; some files hold them as JSON text.
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [dict(m) for m in value or [] if isinstance(m, dict)]


def think_answer_text(think: Any, answer: Any) -> str:
    """The completion a row with ``think`` and ``answer`` columns trains on.

    >>> think_answer_text("2+2=4", "4"), think_answer_text(None, "Paris")
    ('<think>2+2=4</think><answer>4</answer>', '<answer>Paris</answer>')
    """
    body = f"{ANSWER_OPEN}{'' if answer is None else answer}{ANSWER_CLOSE}"
    if think is None or not str(think).strip():
        return body  # a non-reasoning example: the answer alone
    return f"{THINK_OPEN}{think}{THINK_CLOSE}{body}"


def _pair(prompt: str, completion: str, section: Any) -> dict:
    if section.prefill_think and completion.lstrip().startswith(THINK_OPEN):
        completion = completion.lstrip()[len(THINK_OPEN) :]
    return {"prompt": prompt, "completion": completion}


def peek_rows(source: str, n: int = 200, split: str = "train") -> list[dict]:
    """The first ``n`` rows of a local source or preset (cheap: for validation)."""
    kind = source_kind(source)
    if kind == "preset":
        return [dict(r) for r in load_benchmark(source, limit=n)]
    if kind != "local":
        return []
    path = Path(source).expanduser()
    if path.is_file() and path.suffix == ".jsonl":
        rows = []
        with path.open() as fh:
            for line in fh:
                if line.strip():
                    rows.append(json.loads(line))
                if len(rows) >= n:
                    break
        return rows
    dataset = load_source(source, split)
    return [dict(r) for r in dataset.select(range(min(n, len(dataset))))]
