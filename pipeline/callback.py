"""``R1StudioCallback``: any transformers/TRL training script reports live to an R1 Studio.

    from pipeline.callback import R1StudioCallback

    studio = R1StudioCallback(url="http://studio:8000", token=USER_TOKEN, run="my-grpo")
    trainer = GRPOTrainer(model=..., args=..., train_dataset=...,
                          reward_funcs=studio.rewards([accuracy, format_reward]))
    trainer.add_callback(studio)
    trainer.train()

Two ways to name the run:
- ``run="my-grpo"`` (a name) with ``token`` = your API token (the studio's API tokens page or
  ``manage.py createtoken``): the callback creates an *external* run of that name when training
  begins and reports to it with the run's own token.
- ``run=12`` (an id) with ``token`` = that run's token (returned once by
  ``POST /api/runs {"external": true}``, or made anew by ``POST /api/runs/12/token``).

It reports what the run page shows for a studio run: TRL's logs as metrics under TRL's names
(``reward``, ``rewards/<fn>/mean``, ``kl``, ``loss`` ...), progress and ETA, every checkpoint the
trainer saves, the status (started, finished, failed with the traceback of an uncaught exception,
cancelled), and for GRPO the sampled completions with each reward's score and the total, when
the reward functions go through ``rewards()`` (pipeline.stages.grpo's ``SampleRecorder``). A
Cancel in the studio stops training at the end of the step, after a checkpoint.

Events go through ``HttpReporter`` (pipeline/http_reporter.py): batched, retried, spooled to
``<output_dir>/r1studio/run-<id>/events.jsonl`` while the studio is unreachable, and sent in
order when it is back. Only the main process of a multi-process run reports.
"""

from __future__ import annotations

import atexit
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from pipeline.http_reporter import HttpReporter, create_external_run
from pipeline.reporting import _clean
from pipeline.stages.grpo import SampleRecorder


def _kind_of(args: Any) -> str:
    name = type(args).__name__.lower()
    return "grpo" if "grpo" in name else "sft"


def group_advantages(rewards: list[float | None], group: int, scale: Any) -> list[float | None]:
    """GRPO's advantages from the total rewards, as TRL computes them: minus the mean of each
    group of `group` completions of one prompt, divided by the group's standard deviation
    (`scale_rewards="group"`, TRL's default), the batch's ("batch") or not at all ("none")."""
    if group < 1 or not rewards or len(rewards) % group or any(r is None for r in rewards):
        return [None] * len(rewards)
    import numpy as np

    values = np.asarray(rewards, dtype=float).reshape(-1, group)
    centred = values - values.mean(axis=1, keepdims=True)
    if scale in ("group", True):
        centred /= values.std(axis=1, ddof=1, keepdims=True) + 1e-4
    elif scale == "batch":
        centred /= values.std(ddof=1) + 1e-4
    return [float(x) for x in centred.ravel()]


class R1StudioCallback(TrainerCallback):
    """Reports a trainer's run to R1 Studio over HTTP (module docstring)."""

    def __init__(
        self,
        url: str,
        token: str,
        run: int | str,
        *,
        kind: str | None = None,
        spool_dir: str | Path | None = None,
        samples_every: int = 10,
        samples_count: int = 16,
        progress_every_s: float = 1.0,
        batch_seconds: float = 1.0,
        close_timeout: float = 60.0,
    ):
        self.url = url
        self.token = token
        by_id = isinstance(run, int) or (isinstance(run, str) and run.isdigit())
        self.run_id: int | None = int(run) if by_id else None
        self.run_name = "" if by_id else str(run)
        self.kind = kind
        self.spool_dir = Path(spool_dir) if spool_dir else None
        self.samples_every = samples_every
        self.samples_count = samples_count
        self.progress_every_s = progress_every_s
        self.batch_seconds = batch_seconds
        self.close_timeout = close_timeout
        self.reporter: HttpReporter | None = None
        self.recorder: SampleRecorder | None = None
        self._sent: int | None = None
        self._last_progress = 0.0
        self._cancelled = False
        self._ended = False
        self._previous_hook: Any = None

    # --- GRPO: the sampled completions -------------------------------------------------------

    def rewards(
        self, funcs: list[Any], weights: list[float] | None = None, *, think_first: bool = False
    ) -> list[Any]:
        """Your reward functions, recorded so that each step's completions and their scores are
        reported; pass the result as `reward_funcs` (`weights`: GRPOConfig's `reward_weights`).
        `think_first`: also log the share of completions that open with a `<think>` block (the
        studio's R1-Zero format chart; it parses every completion of every step)."""
        self.recorder = SampleRecorder(
            list(funcs), list(weights or [1.0] * len(funcs)), think_first=think_first
        )
        return self.recorder.wrapped()

    # --- the reporter ------------------------------------------------------------------------

    def _open(self, args: Any) -> HttpReporter:
        kind = self.kind or _kind_of(args)
        create = None
        if self.run_id is None:
            # Made by the sender thread once the studio answers: training never waits for it.
            record = {"script": Path(sys.argv[0]).name, "trainer": _clean(args.to_dict())}

            def create(client_key: str) -> tuple[int, str]:
                return create_external_run(
                    self.url,
                    self.token,
                    self.run_name,
                    kind=kind,
                    config=record,
                    client_key=client_key,
                )

            # A new folder for each new run: an earlier run's spool is never sent to this one.
            stamp = time.strftime("%Y%m%d-%H%M%S")
            name = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.run_name)[:60] or "run"
            default = Path(args.output_dir) / "r1studio" / f"{name}-{stamp}"
        else:
            default = Path(args.output_dir) / "r1studio" / f"run-{self.run_id}"
        return HttpReporter(
            self.spool_dir or default,
            url=self.url,
            token=self.token,
            run_id=self.run_id,
            create_run=create,
            batch_seconds=self.batch_seconds,
        )

    def _end(self, state: str, message: str = "") -> None:
        if self._ended or self.reporter is None:
            return
        self._ended = True
        if self._previous_hook is not None and sys.excepthook is self._excepthook:
            sys.excepthook = self._previous_hook
        self.reporter.status(state, message=message)
        self.reporter.close(timeout=self.close_timeout)

    def report_failure(self, error: BaseException) -> None:
        """Mark the run failed with `error`'s traceback (for a script that catches it)."""
        self._end("failed", "".join(traceback.format_exception(error)))

    def _excepthook(self, kind: Any, error: BaseException, tb: Any) -> None:
        self._end("failed", "".join(traceback.format_exception(kind, error, tb)))
        (self._previous_hook or sys.__excepthook__)(kind, error, tb)

    def _at_exit(self) -> None:
        self._end("failed", "The script exited before training ended.")

    # --- trainer events ----------------------------------------------------------------------

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or self.reporter is not None:
            return control
        self.reporter = self._open(args)
        self.reporter.status("started", total_steps=state.max_steps)
        # No callback hears an exception out of trainer.train(): the interpreter does.
        self._previous_hook = sys.excepthook
        sys.excepthook = self._excepthook
        atexit.register(self._at_exit)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.reporter is not None and logs:
            self.reporter.metrics(state.global_step, logs)
        return control

    def on_step_end(self, args, state, control, **kwargs):
        reporter = self.reporter
        if reporter is None:
            return control
        step = state.global_step
        now = time.monotonic()
        if step >= state.max_steps or now - self._last_progress >= self.progress_every_s:
            self._last_progress = now
            reporter.progress(step, state.max_steps)
        recorder = self.recorder
        due = recorder is not None and self.samples_every and step % self.samples_every == 0
        # Checked in this order so the items are built only on the steps that send them.
        if due and recorder.latest_step != self._sent and recorder.latest:
            self._sent = recorder.latest_step  # a generation batch trained on for several steps
            items = [dict(item) for item in recorder.latest]
            if all(item.get("advantage") is None for item in items):
                group = int(getattr(args, "num_generations", 0) or 0)
                scale = getattr(args, "scale_rewards", "group")
                totals = [item.get("reward") for item in items]
                for item, value in zip(items, group_advantages(totals, group, scale), strict=True):
                    item["advantage"] = value
            reporter.samples(step, items[: self.samples_count])
        if reporter.cancel_requested and not self._cancelled:
            self._cancelled = True
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_save(self, args, state, control, **kwargs):
        if self.reporter is not None:
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            self.reporter.checkpoint(state.global_step, str(path.resolve()))
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self._cancelled:
            self._end("cancelled", f"stopped from the studio at step {state.global_step}")
        else:
            self._end("finished")
        return control
