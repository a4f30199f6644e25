"""The ``evaluate`` stage: benchmarks scored as the R1 paper reports them.

For each problem, ``k`` completions are sampled (paper: temperature 0.6, top-p 0.95); pass@1 is
the share of correct ones averaged over problems, cons@k grades the majority answer of the k.
Per-problem results go into the ``eval`` event and ``<run_dir>/eval/<benchmark>.json``; the
summary of all benchmarks into ``<run_dir>/eval/results.json``. With ``--resume``, benchmarks
that already have a results file are not run again.

    python -m pipeline run evaluate.yaml --run-dir runs/eval-1
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline import evalstats, rewards
from pipeline.data import benchmark_label, build_prompt, load_benchmark
from pipeline.reporting import Reporter, stop_requested
from pipeline.stages.common import (
    StageCancelled,
    VllmSampler,
    completion_token_lengths,
    flat_samples,
    load_model,
    load_tokenizer,
    sample_completions,
    sample_transformers,
)
from pipeline.template import parse_completion

ITEM_COMPLETIONS = 4  # completions per problem kept in the event (all of them go to the file)


def grader_for(benchmark: str, grader: str = "") -> Any:
    """The reward that grades a benchmark: ``code`` for HumanEval, ``accuracy`` otherwise."""
    name = grader or ("code" if benchmark == "humaneval" else "accuracy")
    return rewards.get(name)


def score_completions(
    problems: list[dict],
    prompts: list[str],
    completions: list[list[str]],
    grader: Any,
    think_prefilled: bool = False,
    tokenizer: Any = None,
    seed: int = 0,
) -> tuple[dict[str, float], list[dict]]:
    """pass@1 (with its standard error and a bootstrap 95 % interval over problems), cons@k and
    shape metrics for sampled completions, plus one item per problem."""
    flat_prompts, flat_completions, columns = flat_samples(problems, prompts, completions)
    scores = (
        grader(prompts=flat_prompts, completions=flat_completions, **columns)
        if flat_prompts
        else []
    )
    lengths = completion_token_lengths(tokenizer, flat_completions) if tokenizer else []
    math_answers = getattr(grader, "__name__", "") == "accuracy"

    items, rates, offset = [], [], 0
    cons_sum = think_first = well_formed = 0.0
    for index, (row, outs) in enumerate(zip(problems, completions, strict=True)):
        grades = [bool(s is not None and s >= 1.0) for s in scores[offset : offset + len(outs)]]
        parsed = [parse_completion(t, think_prefilled) for t in outs]
        offset += len(outs)
        answers = [
            rewards.extract_answer(t) if math_answers else p.answer
            for t, p in zip(outs, parsed, strict=True)
        ]
        first, _ = vote(answers, grades, math_answers)
        cons = first is not None and grades[first]
        passed = sum(grades) / len(grades) if grades else 0.0
        rates.append(passed)
        cons_sum += cons
        think_first += sum(p.think_first for p in parsed) / max(1, len(parsed))
        well_formed += sum(p.well_formed for p in parsed) / max(1, len(parsed))
        items.append(
            {
                "id": problem_id(row, index),
                "problem": row["problem"],
                "reference": row.get("answer"),
                "pass@1": passed,
                "n_correct": sum(grades),
                "n": len(grades),
                "cons": bool(cons),
                "majority_answer": None if first is None else answers[first],
                "correct": grades,
                "completions": outs,
            }
        )
    n = max(1, len(problems))
    k = max((len(c) for c in completions), default=1)
    metrics = {
        "pass@1": evalstats.mean(rates),
        f"cons@{k}": cons_sum / n,
        "think_first": think_first / n,
        "well_formed": well_formed / n,
        "n_problems": float(len(problems)),
    }
    se = evalstats.pass_at_1_se(rates)
    interval = evalstats.bootstrap_ci(rates, seed=seed)
    if se is not None and interval is not None:
        metrics["pass@1_se"] = se
        metrics["pass@1_ci_low"], metrics["pass@1_ci_high"] = interval
    if lengths:
        metrics["mean_length"] = sum(lengths) / len(lengths)
    return metrics, items


# Distinct wrong answers compared pairwise with math-verify; beyond this many, by text only
# (the comparisons grow with the square, and so many distinct answers rarely win a vote).
MAX_MERGED_ANSWERS = 16


def vote(
    answers: list[str | None], grades: list[bool], math_answers: bool
) -> tuple[int | None, int]:
    """cons@k's majority vote: ``(index of the majority's first sample, votes)``.

    Correct samples all equal the reference, so they vote as one answer whatever their text
    (``0.5`` and ``\\frac{1}{2}``); wrong maths answers are merged by math-verify too.
    """
    keys = [_CORRECT if g else a for a, g in zip(answers, grades, strict=True)]
    same = None
    if math_answers and len({k for k in keys if k and k != _CORRECT}) <= MAX_MERGED_ANSWERS:
        same = _equivalent
    first, votes = evalstats.majority_vote(keys, same)
    return first, votes


_CORRECT = "\x00correct"


def _equivalent(a: str, b: str) -> bool:
    if _CORRECT in (a, b):
        return False
    return rewards.grade(a, b) == 1.0


def problem_id(row: dict, index: int) -> str:
    """A problem's id in its benchmark: its ``id``/``unique_id``/``task_id``, else its index."""
    for key in ("id", "unique_id", "task_id"):
        value = row.get(key)
        if value is not None and str(value).strip():
            return str(value)
    return str(index)


def problem_results(items: list[dict]) -> list[dict]:
    """The per-problem results the ``eval`` event carries for every problem: id, n correct of
    n, the majority answer (cut to 200 characters) and whether it is correct."""
    return [
        {
            "id": item["id"],
            "n_correct": item["n_correct"],
            "n": item["n"],
            "majority_answer": _cut(item["majority_answer"]),
            "correct": item["cons"],
        }
        for item in items
    ]


def _cut(text: str | None, limit: int = 200) -> str | None:
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"


def decoding(temperature: float, top_p: float, n_samples: int, max_new_tokens: int) -> dict:
    """The decoding settings an ``eval`` event reports (greedy: temperature 0, top-p 1)."""
    greedy = temperature == 0
    return {
        "temperature": float(temperature),
        "top_p": 1.0 if greedy else float(top_p),
        "n_samples": 1 if greedy else int(n_samples),
        "max_new_tokens": int(max_new_tokens),
    }


def evaluate_model(
    model: Any,
    tokenizer: Any,
    problems: list[dict],
    prompt_section: Any,
    grader: Any,
    k: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_new_tokens: int = 64,
    batch_size: int = 256,
    seed: int = 0,
    on_batch: Any = None,
) -> tuple[dict[str, float], list[dict]]:
    """Sample from a loaded model and score: what the stage and RL's periodic eval both use."""
    prompts = [build_prompt(tokenizer, row["problem"], prompt_section) for row in problems]
    completions = sample_transformers(
        model, tokenizer, prompts, k, temperature, top_p, max_new_tokens, batch_size, seed, on_batch
    )
    return score_completions(
        problems, prompts, completions, grader, prompt_section.prefill_think, tokenizer, seed
    )


def run(config: Any, reporter: Reporter, *, resume: bool = False) -> dict:
    """Run every configured benchmark on the model; returns ``{benchmark: metrics}``."""
    run_dir = Path(reporter.run_dir)
    out_dir = run_dir / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    sampling = config.sampling

    # load model
    model = sampler = None
    if sampling.use_vllm:
        sampler = VllmSampler(config.model, config.seed, sampling.vllm_gpu_memory_utilization)
        tokenizer = load_tokenizer(config.model.path, config.model.trust_remote_code)
    else:
        model, tokenizer = load_model(config.model)

    # load data
    benches = []
    for spec in config.benchmarks:
        dataset = load_benchmark(
            spec.name, spec.path, spec.problem_column, spec.answer_column, config.limit
        )
        benches.append((spec, [dict(r) for r in dataset]))
    total = sum(len(rows) for _, rows in benches)
    reporter.status("running", total_steps=total)

    # evaluate
    summary: dict[str, dict] = {}
    done = 0
    for spec, rows in benches:
        label = benchmark_label(spec.name, spec.path)
        result_file = out_dir / f"{_slug(label)}.json"
        if resume and result_file.exists():
            summary[label] = json.loads(result_file.read_text())["metrics"]
            done += len(rows)
            reporter.log("info", f"{label}: already evaluated, kept {result_file}")
            continue
        grader = grader_for(spec.name, spec.grader)

        def on_batch(start: int, batch: list, base: int = done) -> None:
            reporter.progress(base + start + len(batch), total)
            if stop_requested():
                raise StageCancelled("stopped during evaluation")

        prompts = [build_prompt(tokenizer, r["problem"], config.prompt) for r in rows]
        completions = sample_completions(
            sampling,
            prompts,
            sampler=sampler,
            model=model,
            tokenizer=tokenizer,
            seed=config.seed,
            on_batch=on_batch,
        )
        metrics, items = score_completions(
            rows, prompts, completions, grader, config.prompt.prefill_think, tokenizer, config.seed
        )
        done += len(rows)
        settings = decoding(
            sampling.temperature, sampling.top_p, sampling.k, sampling.max_new_tokens
        )
        n_samples = settings["n_samples"]
        problems = problem_results(items)
        result_file.write_text(
            json.dumps(
                {
                    "benchmark": label,
                    "metrics": metrics,
                    "n_samples": n_samples,
                    "decoding": settings,
                    "problems": problems,
                    "items": items,
                },
                ensure_ascii=False,
            )
        )
        reporter.eval(
            0,
            label,
            metrics,
            n_samples,
            [_trim(i) for i in items],
            decoding=settings,
            problems=problems,
        )
        reporter.metrics(0, {f"eval/{label}/{k}": v for k, v in metrics.items()})
        summary[label] = metrics

    # save
    (out_dir / "results.json").write_text(json.dumps(summary, indent=2))
    return summary


def _trim(item: dict) -> dict:
    return {**item, "completions": item["completions"][:ITEM_COMPLETIONS]}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "benchmark"


def heldout_figures(model_dir: str | Path, problems: list[dict], max_new_tokens: int = 32) -> dict:
    """Greedy pass@1, think-first rate and the rest of `evaluate_model`'s figures for a saved
    model on held-out problems (the recipe bench and the tests measure learning with it)."""
    from transformers import AutoModelForCausalLM

    from pipeline import rewards
    from pipeline.config import PromptSection
    from pipeline.stages.common import load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = load_tokenizer(str(model_dir))
    metrics, _ = evaluate_model(
        model,
        tokenizer,
        problems,
        PromptSection(),
        rewards.get("accuracy"),
        max_new_tokens=max_new_tokens,
    )
    return metrics
