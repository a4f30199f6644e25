"""Events out of a running stage: ``<run_dir>/events.jsonl``, one JSON object a line.

The run supervisor tails this file, so every event is written and flushed as a whole line.
Event shapes (DESIGN.md §4): ``status``, ``metrics``, ``samples``, ``checkpoint``, ``eval``,
``dataset``, ``log`` and ``progress``; each has ``type`` and ``time`` (unix seconds) and ``step``
where one applies. Metric names are TRL's, untouched (``reward``, ``rewards/accuracy/mean``,
``completions/mean_length``, ``loss`` ...).

``ReporterCallback`` plugs a reporter into a transformers/TRL trainer; ``request_stop`` (called
from the CLI's SIGTERM handler) makes it save a checkpoint and stop at the end of the step.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Protocol

_STOP = threading.Event()
# Every event also becomes one readable line here: the CLI sends it to the run's stdout.log
# (stderr.log for warnings and a failure's traceback), which the run page tails.
logger = logging.getLogger("pipeline.events")
ECHO_METRICS = (
    "reward", "reward_std", "loss", "kl", "entropy", "learning_rate",
    "completions/mean_length", "completions/clipped_ratio", "grad_norm",
)  # fmt: skip
LOG_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


def request_stop() -> None:
    """Ask the running stage to save and stop (safe to call from a signal handler)."""
    _STOP.set()


def stop_requested() -> bool:
    return _STOP.is_set()


def clear_stop() -> None:
    _STOP.clear()


class Reporter(Protocol):
    """What a stage reports through; ``run_dir`` is where it writes its outputs."""

    run_dir: Path

    def status(
        self, state: str, message: str = "", total_steps: int | None = None, **fields: Any
    ) -> None: ...
    def metrics(self, step: int, values: dict[str, Any]) -> None: ...
    def samples(self, step: int, items: list[dict]) -> None: ...
    def checkpoint(self, step: int, path: str) -> None: ...
    def eval(
        self,
        step: int,
        benchmark: str,
        metrics: dict,
        n_samples: int,
        items: list[dict],
        *,
        decoding: dict | None = None,
        problems: list[dict] | None = None,
    ) -> None: ...
    def dataset(self, path: str, rows: int, kind: str) -> None: ...
    def log(self, level: str, message: str) -> None: ...
    def progress(self, step: int, total_steps: int) -> None: ...


PARENT_PID_ENV = "R1STUDIO_PARENT_PID"


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when the process named by $R1STUDIO_PARENT_PID (the
    run supervisor) dies, and stop at once if it is gone already.

    Called by the stage process itself once it runs: a `preexec_fn` would run Python in the
    forked child of the many-threaded worker, which crashed there now and then."""
    import os
    import signal
    import sys

    parent = os.environ.get(PARENT_PID_ENV, "")
    if not parent.isdigit() or not sys.platform.startswith("linux"):
        return
    import ctypes

    # PR_SET_PDEATHSIG: relative to this process's parent (under `accelerate launch`, the
    # launcher, which itself dies with the supervisor).
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    try:
        os.kill(int(parent), 0)
    except ProcessLookupError:  # the supervisor died before the line above
        os.kill(os.getpid(), signal.SIGTERM)
    except PermissionError:
        pass


def finite_or_none(value: Any) -> float | None:
    """A real number as a float; NaN, infinities, booleans and non-numbers are None (JSON has
    no NaN, and JSON columns refuse it). The studio's one rule for "unknown" figures."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become None, tensors and numpy scalars become Python numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        try:
            return _clean(value.item())
        except (ValueError, RuntimeError):
            return str(value)
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def _numeric(values: dict[str, Any]) -> dict[str, float | None]:
    """The numeric values of a log dict; NaN/inf stay as None so a diverged loss is visible."""
    out: dict[str, float | None] = {}
    for key, value in values.items():
        if hasattr(value, "item") and callable(value.item):
            try:
                value = value.item()
            except (ValueError, RuntimeError):
                continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        out[key] = finite_or_none(value)
    return out


class JsonlReporter:
    """Appends events to ``<run_dir>/events.jsonl``, one flushed line each."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "events.jsonl"
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (lives with the reporter)
        self._lock = threading.Lock()
        self._progress_start: tuple[float, int] | None = None

    def _write(self, event_type: str, step: int | None = None, **fields: Any) -> None:
        event: dict[str, Any] = {"type": event_type, "time": time.time()}
        if step is not None:
            event["step"] = int(step)
        event.update(_clean(fields))
        line = json.dumps(event, ensure_ascii=False)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
        echo(event)

    def status(
        self, state: str, message: str = "", total_steps: int | None = None, **fields: Any
    ) -> None:
        # `fields`: e.g. the `environment` of a `started` event (pipeline.environment)
        self._write("status", state=state, message=message, total_steps=total_steps, **fields)

    def metrics(self, step: int, values: dict[str, Any]) -> None:
        numbers = _numeric(values)
        if numbers:
            self._write("metrics", step, values=numbers)

    def samples(self, step: int, items: list[dict]) -> None:
        self._write("samples", step, items=items)

    def checkpoint(self, step: int, path: str) -> None:
        self._write("checkpoint", step, path=str(path))

    def eval(
        self,
        step: int,
        benchmark: str,
        metrics: dict,
        n_samples: int,
        items: list[dict],
        *,
        decoding: dict | None = None,
        problems: list[dict] | None = None,
    ) -> None:
        # decoding and problems came later: events without them stay valid (older runs).
        extra: dict[str, Any] = {}
        if decoding is not None:
            extra["decoding"] = decoding
        if problems is not None:
            extra["problems"] = problems
        self._write(
            "eval",
            step,
            benchmark=benchmark,
            metrics=metrics,
            n_samples=n_samples,
            items=items,
            **extra,
        )

    def dataset(self, path: str, rows: int, kind: str) -> None:
        self._write("dataset", path=str(path), rows=rows, kind=kind)

    def log(self, level: str, message: str) -> None:
        self._write("log", level=level, message=message)

    def progress(self, step: int, total_steps: int) -> None:
        now = time.monotonic()
        if self._progress_start is None or step < self._progress_start[1]:
            self._progress_start = (now, step)
        start_time, start_step = self._progress_start
        eta = None
        if step > start_step and total_steps:
            eta = (now - start_time) / (step - start_step) * max(0, total_steps - step)
        self._write("progress", step, total_steps=total_steps, eta_seconds=eta)

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def echo(event: dict[str, Any]) -> None:
    """Log one event as a line a person reads in the run's logs (samples and progress: no)."""
    kind, step = event.get("type"), event.get("step")
    level = logging.INFO
    if kind == "status":
        state, message = event.get("state", ""), event.get("message") or ""
        total = f" ({event['total_steps']} steps)" if event.get("total_steps") else ""
        text = f"{state}{total}" + (f": {message}" if message else "")
        level = logging.ERROR if state == "failed" else logging.INFO
    elif kind == "log":
        level = LOG_LEVELS.get(str(event.get("level")).lower(), logging.INFO)
        text = str(event.get("message"))
    elif not logger.isEnabledFor(logging.INFO):
        return  # e.g. a user's script reporting through R1StudioCallback: not worth the text
    elif kind == "metrics":
        values = event.get("values") or {}
        names = [n for n in ECHO_METRICS if n in values]
        names += sorted(n for n in values if n.startswith("rewards/") and n.endswith("/mean"))
        names = names or list(values)[:8]  # e.g. the trainer's closing train_runtime, ...
        shown = ", ".join(f"{n}={_number(values[n])}" for n in names if values[n] is not None)
        text = f"step {step}: {shown}"
    elif kind == "checkpoint":
        text = f"checkpoint at step {step}: {event.get('path')}"
    elif kind == "eval":
        figures = event.get("metrics") or {}
        shown = ", ".join(f"{k}={_number(v)}" for k, v in figures.items() if "@" in str(k))
        text = f"eval {event.get('benchmark')} at step {step}: {shown}"
    elif kind == "dataset":
        rows, path = event.get("rows"), event.get("path")
        text = f"dataset written: {path} ({rows} rows, {event.get('kind')})"
    else:
        return
    logger.log(level, text)


def setup_logging() -> None:
    """What a run's process logs: the pipeline's lines at INFO to stdout, every warning and
    error (the libraries' too, and Python warnings) to stderr. No-op when already set up."""
    import sys

    root = logging.getLogger()
    if any(getattr(h, "_r1studio", False) for h in root.handlers):
        return
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    out = logging.StreamHandler(sys.stdout)
    out.setLevel(logging.INFO)
    out.addFilter(lambda record: record.levelno < logging.WARNING)
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    for handler in (out, err):
        handler.setFormatter(fmt)
        handler._r1studio = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("pipeline").setLevel(logging.INFO)
    logging.captureWarnings(True)


class NullReporter:
    """Reports nothing: what non-main ranks of a multi-process run use."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def __getattr__(name: str) -> Any:
    # The callback subclasses transformers' TrainerCallback, which imports torch: build it on
    # first use so that importing the reporter stays light (the web side reads events only).
    if name == "ReporterCallback":
        cls = _make_callback_class()
        globals()["ReporterCallback"] = cls
        return cls
    raise AttributeError(name)


def _make_callback_class() -> type:
    from transformers import TrainerCallback

    class ReporterCallback(TrainerCallback):
        """Turns a trainer's logs, saves and steps into events, on the main process only.

        Also the graceful stop: once ``request_stop()`` was called, the next step end asks the trainer
        to save a checkpoint and stop training.
        """

        def __init__(self, reporter: Reporter, progress_every_s: float = 1.0):
            self.reporter = reporter
            self.progress_every_s = progress_every_s
            self._last_progress = 0.0
            self.stopped = False

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.reporter.status("running", total_steps=state.max_steps)
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                self.reporter.metrics(state.global_step, logs)
            return control

        def on_step_end(self, args, state, control, **kwargs):
            if stop_requested():
                self.stopped = True
                control.should_save = True
                control.should_training_stop = True
            if state.is_world_process_zero:
                now = time.monotonic()
                last = state.global_step >= state.max_steps
                if last or now - self._last_progress >= self.progress_every_s:
                    self._last_progress = now
                    self.reporter.progress(state.global_step, state.max_steps)
            return control

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                self.reporter.checkpoint(state.global_step, str(path))
            return control

    return ReporterCallback
