"""The ``generate`` stage: sample, grade, filter, write a dataset (rejection sampling, distillation).

For every prompt, ``k`` completions are sampled (vLLM when ``sampling.use_vllm`` and installed,
else transformers ``generate`` in batches), graded by the configured verifiers (reward
functions), then filtered: keep the correct ones, drop mixed-language reasoning, over-long or
repetitive completions, exact or near duplicates of the same prompt, and, before any sampling,
prompts that overlap a benchmark (n-gram decontamination). The result goes to
``<run_dir>/dataset/data.parquet`` and ``data.jsonl`` in ``messages`` format, one row per kept
sample with its provenance (model, run, sample index, scores).

Raw samples are appended to ``<run_dir>/samples.jsonl`` batch by batch, so ``--resume`` only
samples the prompts that are missing.

    python -m pipeline run generate.yaml --run-dir runs/rejection-sampling [--resume]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline import rewards
from pipeline.data import build_prompt, load_problems
from pipeline.dedup import BenchmarkIndex, find_duplicates
from pipeline.reporting import Reporter, stop_requested
from pipeline.stages.common import (
    ANSWER_REWARDS,
    StageCancelled,
    VllmSampler,
    completion_token_lengths,
    flat_samples,
    load_model,
    load_tokenizer,
    sample_completions,
)
from pipeline.template import THINK_OPEN, make_conversation, parse_completion, render_prompt

# ---------------------------------------------------------------------------------------------
# Sampling with a resumable log of raw samples


def _read_samples(path: Path) -> dict[int, list[str]]:
    done: dict[int, list[str]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done[row["index"]] = row["completions"]
    return done


def _sample_all(
    config: Any, reporter: Reporter, prompts: list[str], run_dir: Path, resume: bool
) -> list[list[str]]:
    sampling = config.sampling
    log_path = run_dir / "samples.jsonl"
    done = _read_samples(log_path) if resume else {}
    if not resume and log_path.exists():
        log_path.unlink()
    pending = [i for i in range(len(prompts)) if i not in done]
    if resume and done:
        reporter.log("info", f"resuming: {len(done)} prompts already sampled")
    reporter.status("running", total_steps=len(prompts))

    with log_path.open("a") as log_file:

        def record(indices: list[int], batch: list[list[str]]) -> None:
            for i, outs in zip(indices, batch, strict=True):
                done[i] = outs
                log_file.write(json.dumps({"index": i, "completions": outs}) + "\n")
            log_file.flush()
            reporter.progress(len(done), len(prompts))

        if pending and sampling.use_vllm:
            sampler = VllmSampler(config.model, config.seed, sampling.vllm_gpu_memory_utilization)
            record(
                pending,
                sample_completions(sampling, [prompts[i] for i in pending], sampler=sampler),
            )
        elif pending:
            model, tokenizer = load_model(config.model)

            def on_batch(start: int, batch: list[list[str]]) -> None:
                record(pending[start : start + len(batch)], batch)
                if stop_requested():
                    raise StageCancelled(
                        f"stopped after sampling {len(done)} of {len(prompts)} prompts "
                        "(kept in samples.jsonl; --resume continues)"
                    )

            sample_completions(
                sampling,
                [prompts[i] for i in pending],
                model=model,
                tokenizer=tokenizer,
                seed=config.seed,
                on_batch=on_batch,
            )
    return [done[i] for i in range(len(prompts))]


# ---------------------------------------------------------------------------------------------
# The stage


def run(config: Any, reporter: Reporter, *, resume: bool = False) -> dict:
    """Sample, grade, filter and write the dataset; returns the counts."""
    run_dir = Path(reporter.run_dir)
    filters = config.filters
    prefilled = config.data.prefill_think
    tokenizer = load_tokenizer(config.model.path, config.model.trust_remote_code)

    # load data, decontaminated before any sampling
    needs_answer = any(spec.name in ANSWER_REWARDS for spec in config.verifiers)
    problems = [dict(r) for r in load_problems(config.data, require_answer=needs_answer)]
    counts: dict[str, float] = {"prompts": len(problems)}
    if filters.decontaminate:
        index = BenchmarkIndex(filters.decontaminate, filters.decontaminate_ngram)
        hits = index.check([str(p["problem"]) for p in problems])
        clean = [p for p, hit in zip(problems, hits, strict=True) if hit is None]
        counts["dropped/decontaminate"] = len(problems) - len(clean)
        problems = clean
    prompts = [build_prompt(tokenizer, p["problem"], config.data) for p in problems]

    # sample
    completions = _sample_all(config, reporter, prompts, run_dir, resume)

    # grade with every verifier
    rows = [
        {"index": index, "sample": j, "completion": text, "problem": problem}
        for index, (problem, outs) in enumerate(zip(problems, completions, strict=True))
        for j, text in enumerate(outs)
    ]
    flat_prompts, flat_completions, columns = flat_samples(problems, prompts, completions)
    for spec in config.verifiers:
        func = rewards.get(spec.name, run_dir=run_dir, **spec.params)
        scores = func(prompts=flat_prompts, completions=flat_completions, **columns) if rows else []
        for row, score in zip(rows, scores, strict=True):
            row.setdefault("scores", {})[spec.name] = score
        valid = [s for s in scores if s is not None]
        counts[f"verifiers/{spec.name}/mean"] = sum(valid) / len(valid) if valid else 0.0
    counts["samples"] = len(rows)

    # filter
    kept = _filter(rows, config, tokenizer, counts, prefilled)
    counts["kept"] = len(kept)
    counts["keep_rate"] = len(kept) / len(rows) if rows else 0.0

    # save
    path = _write_dataset(kept, config, run_dir, prefilled)
    reporter.metrics(0, counts)
    weights = {spec.name: spec.weight for spec in config.verifiers}
    reporter.samples(0, [_sample_item(r, prompts, weights) for r in kept[:16]])
    reporter.dataset(str(path), len(kept), config.output.format)
    if not kept:
        reporter.log("warning", "no sample passed the filters: the dataset is empty")
    return counts


def _filter(rows: list[dict], config: Any, tokenizer: Any, counts: dict, prefilled: bool) -> list:
    filters = config.filters

    def apply(name: str, keep: Any) -> None:
        nonlocal rows
        before = len(rows)
        rows = [r for r in rows if keep(r)]
        counts[f"dropped/{name}"] = before - len(rows)

    if filters.keep_correct:
        apply(
            "keep_correct",
            lambda r: all(
                s is not None and s >= filters.min_score for s in r.get("scores", {}).values()
            ),
        )
    if filters.drop_mixed_language:
        lang = rewards.get(
            "language_consistency", language=filters.language, think_prefilled=prefilled
        )
        scores = lang(prompts=None, completions=[r["completion"] for r in rows]) if rows else []
        for row, score in zip(rows, scores, strict=True):
            row["language_consistency"] = score
        apply(
            "mixed_language",
            lambda r: (
                r["language_consistency"] is None
                or r["language_consistency"] >= filters.min_language_consistency
            ),
        )
    if filters.max_length:
        lengths = completion_token_lengths(tokenizer, [r["completion"] for r in rows])
        for row, n in zip(rows, lengths, strict=True):
            row["length"] = n
        apply("max_length", lambda r: r["length"] <= filters.max_length)
    if filters.max_repetition:
        from pipeline.rewards.repetition import repeated_ngram_share

        apply(
            "max_repetition",
            lambda r: repeated_ngram_share(r["completion"]) <= filters.max_repetition,
        )
    if filters.dedup != "none":
        # Duplicates among the completions of one prompt (pipeline.dedup, as curation uses).
        earlier = find_duplicates(
            [r["completion"] for r in rows],
            mode=filters.dedup,
            groups=[r["index"] for r in rows],
            threshold=filters.near_dup_threshold,
        )
        firsts = {id(r) for r, e in zip(rows, earlier, strict=True) if e < 0}
        apply("dedup", lambda r: id(r) in firsts)
    if filters.max_per_prompt:
        per_prompt: dict[int, int] = {}

        def under_cap(r: dict) -> bool:
            per_prompt[r["index"]] = per_prompt.get(r["index"], 0) + 1
            return per_prompt[r["index"]] <= filters.max_per_prompt

        apply("max_per_prompt", under_cap)
    return rows


def _assistant_text(completion: str, prefilled: bool) -> str:
    # The prompt opened <think>; the written example must hold the whole turn.
    if prefilled and not completion.lstrip().startswith(THINK_OPEN):
        return THINK_OPEN + completion
    return completion


def _write_dataset(rows: list[dict], config: Any, run_dir: Path, prefilled: bool) -> Path:
    import datasets

    out_dir = run_dir / "dataset"
    out_dir.mkdir(parents=True, exist_ok=True)
    data = config.data
    records = []
    for row in rows:
        problem = row["problem"]
        assistant = _assistant_text(row["completion"], prefilled)
        record: dict[str, Any] = {}
        if config.output.format == "messages":
            system = data.system_prompt if config.output.include_system_prompt else None
            user = render_prompt(problem["problem"], data.prompt_template)
            messages = make_conversation(user, system)
            messages.append({"role": "assistant", "content": assistant})
            record["messages"] = messages
        else:
            record["completion"] = assistant
        record["problem"] = problem["problem"]
        record["answer"] = str(problem.get("answer", ""))
        record["source_model"] = config.model.path
        record["source_run"] = str(run_dir)
        record["prompt_index"] = row["index"]
        record["sample_index"] = row["sample"]
        record["scores"] = json.dumps(row.get("scores", {}))
        record["think_first"] = parse_completion(assistant).think_first
        records.append(record)
    jsonl = out_dir / "data.jsonl"
    with jsonl.open("w") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    if records:
        datasets.Dataset.from_list(records).to_parquet(str(out_dir / "data.parquet"))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"messages": pa.array([], pa.string())}), out_dir / "data.parquet")
    return out_dir


def _sample_item(row: dict, prompts: list[str], weights: dict[str, float]) -> dict:
    scores = row.get("scores", {})
    valid = [weights.get(name, 1.0) * s for name, s in scores.items() if s is not None]
    return {
        "prompt": prompts[row["index"]],
        "completion": row["completion"],
        "reference": row["problem"].get("answer"),
        "rewards": scores,
        "reward": sum(valid) if valid else None,
        "advantage": None,
    }
