"""The ``grpo`` stage: R1-Zero and reasoning RL with TRL's GRPOTrainer.

Prompts come from the data section (rendered with the prompt template), rewards from the
registry, weighted with TRL's ``reward_weights``. The reward calls are recorded, so every
``log_samples_every`` steps a ``samples`` event shows what the model wrote, each reward's score,
the total and the group-normalised advantage. Training prompts rarely come back within a run,
so ``probe_count`` fixed probe prompts (held-out benchmark problems when ``eval.benchmark`` is
set, else training ones; picked by the seed) are answered greedily before training and at every
samples report, as ``samples`` items marked ``source: "probe"``: one prompt followed over time.
With ``eval.benchmark`` set, greedy accuracy on that benchmark is reported as ``eval`` events
during training.

    python -m pipeline run grpo.yaml --run-dir runs/r1-zero [--resume]
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from pipeline import rewards
from pipeline.data import benchmark_label, build_prompt, load_benchmark, load_problems
from pipeline.reporting import Reporter, ReporterCallback, stop_requested
from pipeline.stages.common import (
    ANSWER_REWARDS,
    StageError,
    flat_samples,
    load_model,
    sample_transformers,
    save_final,
    train,
    trainer_arguments,
)
from pipeline.stages.evaluate import decoding, evaluate_model, grader_for, problem_results
from pipeline.template import parse_completion


class SampleRecorder:
    """Wraps reward functions to keep the latest scored batch (prompt, completion, scores).

    The advantages are TRL's own: ``recording_trainer`` hands over the ones GRPOTrainer computed
    for the batch (``set_advantages``), so the figures shown are the ones trained on. On several
    processes each process sees its own slice of the batch.
    """

    def __init__(
        self,
        funcs: list[Any],
        weights: list[float],
        think_prefilled: bool = False,
        think_first: bool = True,
    ):
        self.funcs = funcs
        self.weights = weights
        self.think_prefilled = think_prefilled
        self.think_first = think_first  # log the share of completions that think first
        self.latest_step = -1
        self._scores: dict[str, list] = {}
        # The latest batch as it came (prompts, completions, references, scores by reward) and
        # TRL's advantages for it; the items are built from them only when someone reads
        # `latest` (a samples report every few steps), not at every step.
        self._batch: tuple[list, list, list, dict[str, list]] | None = None
        self._advantages: list[float] | None = None
        self._items: list[dict] | None = None

    def wrapped(self) -> list[Any]:
        return [self._wrap(i, f) for i, f in enumerate(self.funcs)]

    def _wrap(self, index: int, func: Any) -> Any:
        def reward(prompts: list, completions: list, **kwargs: Any) -> list:
            scores = func(prompts=prompts, completions=completions, **kwargs)
            if index == 0:
                self._scores = {}
            self._scores[func.__name__] = list(scores)
            if index == len(self.funcs) - 1:
                self._finish(prompts, completions, kwargs)
            return scores

        reward.__name__ = func.__name__
        return reward

    def _finish(self, prompts: list, completions: list, kwargs: dict) -> None:
        state = kwargs.get("trainer_state")
        self.latest_step = state.global_step + 1 if state is not None else self.latest_step + 1
        references = kwargs.get("answer") or []
        self._batch = (list(prompts), list(completions), list(references), self._scores)
        self._advantages = None  # TRL computes them after the rewards: set_advantages
        self._items = None
        log_metric = kwargs.get("log_metric")
        if self.think_first and callable(log_metric) and completions:
            parsed = [parse_completion(c, self.think_prefilled) for c in completions]
            log_metric("think_first", sum(p.think_first for p in parsed) / len(parsed))

    @property
    def latest(self) -> list[dict]:
        """The latest scored batch: prompt, completion, reference, each reward's score, the
        total and TRL's advantage (None until it is known), one dict per completion."""
        if self._items is None:
            self._items = self._build() if self._batch is not None else []
        return self._items

    def _build(self) -> list[dict]:
        assert self._batch is not None
        prompts, completions, references, scores = self._batch
        names = [f.__name__ for f in self.funcs]
        items = []
        for i in range(len(completions)):
            total = weighted_total([scores[n][i] for n in names], self.weights)
            advantage = self._advantages[i] if self._advantages is not None else None
            items.append(
                {
                    "prompt": _text(prompts[i]),
                    "completion": _text(completions[i]),
                    "reference": references[i] if i < len(references) else None,
                    "rewards": {n: scores[n][i] for n in names},
                    "reward": None if math.isnan(total) else total,
                    "advantage": advantage,
                }
            )
        return items

    def set_advantages(self, advantages: list[float]) -> None:
        """TRL's advantages for the batch just scored, in the order the rewards saw it."""
        size = len(self._batch[1]) if self._batch is not None else 0
        if len(advantages) != size:
            raise StageError(f"TRL returned {len(advantages)} advantages for {size} completions")
        self._advantages = list(advantages)
        for item, value in zip(self._items or [], advantages, strict=False):
            item["advantage"] = value


def recording_trainer(recorder: SampleRecorder) -> type:
    """GRPOTrainer that hands the advantages it computed for each batch to ``recorder``."""
    from trl import GRPOTrainer

    class RecordingGRPOTrainer(GRPOTrainer):
        def _generate_and_score_completions(self, inputs: Any) -> dict:
            output = super()._generate_and_score_completions(inputs)
            recorder.set_advantages(output["advantages"].tolist())
            return output

    return RecordingGRPOTrainer


def weighted_total(values: list[float | None], weights: list[float]) -> float:
    """TRL's total reward: the weighted sum of the rewards that could judge; NaN when none could."""
    if all(v is None for v in values):
        return math.nan
    return sum(w * v for w, v in zip(weights, values, strict=True) if v is not None)


def _text(value: Any) -> str:
    from pipeline.template import completion_text

    return value if isinstance(value, str) else completion_text(value)


def pick_probes(pool: Any, count: int, seed: int) -> list[dict]:
    """``count`` rows of ``pool`` picked by ``seed``, in pool order: the same ones every run."""
    n = min(count, len(pool))
    return [dict(pool[i]) for i in sorted(random.Random(seed).sample(range(len(pool)), n))]


class Probes:
    """Fixed prompts answered greedily with the current model, scored by the run's rewards.

    Greedy, one completion each and a private RNG (``sample_transformers``): a few prompts cost
    a fraction of a training step and do not disturb the trainer's sampling. The items have no
    advantage (they are not trained on) and carry ``source: "probe"``.
    """

    def __init__(
        self,
        rows: list[dict],
        prompts: list[str],
        funcs: list[Any],
        weights: list[float],
        max_new_tokens: int,
        seed: int,
    ):
        self.rows = rows
        self.prompts = prompts
        self.funcs = funcs
        self.weights = weights
        self.max_new_tokens = max_new_tokens
        self.seed = seed

    def items(self, model: Any, tokenizer: Any) -> list[dict]:
        if not self.prompts:
            return []
        completions = sample_transformers(
            model, tokenizer, self.prompts, 1, 0.0, 1.0, self.max_new_tokens,
            len(self.prompts), self.seed,
        )  # fmt: skip
        prompts, texts, columns = flat_samples(self.rows, self.prompts, completions)
        scores = {
            f.__name__: list(f(prompts=prompts, completions=texts, **columns)) for f in self.funcs
        }
        items = []
        for i, text in enumerate(texts):
            values = {name: s[i] for name, s in scores.items()}
            total = weighted_total(list(values.values()), self.weights)
            items.append(
                {
                    "prompt": prompts[i],
                    "completion": text,
                    "reference": self.rows[i].get("answer"),
                    "rewards": values,
                    "reward": None if math.isnan(total) else total,
                    "advantage": None,
                    "source": "probe",
                }
            )
        return items


def _callbacks(
    config: Any,
    reporter: Reporter,
    recorder: SampleRecorder,
    tokenizer: Any,
    bench: Any = None,
    probes: Probes | None = None,
) -> list:
    from transformers import TrainerCallback

    def report_probes(model: Any, step: int) -> None:
        if probes is not None and probes.prompts:
            reporter.samples(step, probes.items(model, tokenizer))

    class SamplesCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            # Before any update: where the model starts is the first point of "over time".
            if config.log_samples_every and state.is_world_process_zero:
                report_probes(model, state.global_step)
            return control

        def on_step_end(self, args, state, control, model=None, **kwargs):
            every = config.log_samples_every
            due = every and state.global_step % every == 0
            if due and state.is_world_process_zero:
                report_probes(model, state.global_step)
                if recorder.latest:
                    latest = recorder.latest[: config.log_samples_count]
                    reporter.samples(state.global_step, latest)
            return control

    callbacks = [ReporterCallback(reporter), SamplesCallback()]
    if bench is not None:
        ev = config.eval
        problems = [dict(r) for r in bench.select(range(min(ev.limit, len(bench))))]
        grader = grader_for(ev.benchmark)
        label = benchmark_label(ev.name or ev.benchmark)
        max_new = ev.max_new_tokens or config.trainer.max_completion_length

        def evaluate(model: Any, step: int) -> None:
            metrics, items = evaluate_model(
                model, tokenizer, problems, config.data, grader, max_new_tokens=max_new
            )
            reporter.eval(
                step,
                label,
                metrics,
                1,
                items,
                decoding=decoding(0.0, 1.0, 1, max_new),
                problems=problem_results(items),
            )
            reporter.metrics(step, {f"eval/{label}/{k}": v for k, v in metrics.items()})

        class EvalCallback(TrainerCallback):
            def on_step_end(self, args, state, control, model=None, **kwargs):
                due = ev.every_steps and state.global_step % ev.every_steps == 0
                if due and state.is_world_process_zero:
                    evaluate(model, state.global_step)
                return control

            def on_train_end(self, args, state, control, model=None, **kwargs):
                if (
                    state.is_world_process_zero
                    and not stop_requested()
                    and (not ev.every_steps or state.global_step % ev.every_steps)
                ):
                    evaluate(model, state.global_step)
                return control

        callbacks.append(EvalCallback())
    return callbacks


def run(config: Any, reporter: Reporter, *, resume: bool = False) -> dict:
    """Train with GRPO; returns the last logged metrics."""
    from trl import GRPOConfig

    run_dir = Path(reporter.run_dir)

    # load model
    model, tokenizer = load_model(config.model)

    # load data: prompts rendered once, every other column passed on to the rewards
    needs_answer = any(spec.name in ANSWER_REWARDS for spec in config.rewards)
    problems = load_problems(config.data, require_answer=needs_answer)
    if len(problems) == 0:
        raise StageError(f"data.source: {config.data.source} has no rows")
    dataset = problems.map(
        lambda row: {"prompt": build_prompt(tokenizer, row["problem"], config.data)}
    )
    bench = None
    if config.eval.benchmark:
        ev = config.eval
        bench = load_benchmark(
            ev.benchmark, problem_column=ev.problem_column, answer_column=ev.answer_column
        )
    # probes: held-out problems when there are some, so the model never trained on them
    probe_rows = pick_probes(
        bench if bench is not None else problems, config.probe_count, config.seed
    )

    # build rewards
    funcs = [rewards.get(spec.name, run_dir=run_dir, **spec.params) for spec in config.rewards]
    weights = [spec.weight for spec in config.rewards]
    recorder = SampleRecorder(funcs, weights, config.data.prefill_think)

    probes = Probes(
        probe_rows,
        [build_prompt(tokenizer, row["problem"], config.data) for row in probe_rows],
        funcs,
        weights,
        config.trainer.max_completion_length,
        config.seed,
    )

    # train
    args = GRPOConfig(
        **trainer_arguments(config.trainer, config.output, config.seed, run_dir),
        reward_weights=weights,
    )
    callbacks = _callbacks(config, reporter, recorder, tokenizer, bench, probes)
    trainer = recording_trainer(recorder)(
        model=model,
        reward_funcs=recorder.wrapped(),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    train(trainer, callbacks[0], run_dir, resume, reporter)

    # save
    if config.output.save_final:
        save_final(trainer, tokenizer, run_dir, reporter)
    logged = [h for h in trainer.state.log_history if "reward" in h]
    last = logged[-1] if logged else {}
    summary = {k: v for k, v in last.items() if k == "reward" or k.startswith("rewards/")}
    summary = {k: v for k, v in summary.items() if not k.endswith("/std")}
    return {**summary, "step": trainer.state.global_step}
