"""Request and response bodies of the JSON API (pydantic, via django-ninja)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import Field, field_validator


class RunCreateIn(Schema):
    name: str = Field("", description="Run name (default: '<kind> run').")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="A stage config: pipeline.config's GRPOStage, SFTStage, GenerateStage or "
        "EvaluateStage as JSON (`kind` picks which). For an external run: any record of what "
        "the script runs (kept as is, not validated).",
    )
    external: bool = Field(
        False,
        description="A run that a script outside the studio reports to over HTTP "
        "(POST /api/runs/{id}/events with the `token` of the answer); no worker runs it.",
    )
    kind: str = Field("grpo", description="External runs: grpo, sft, generate or evaluate.")
    client_key: str = Field(
        "",
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:-]*$",
        description="External runs: a key the client picks once per run (e.g. a UUID) that makes "
        "a retried create return the run already made instead of a second one.",
    )
    executor: Literal["worker", "ray"] = Field(
        "worker",
        description="Where its launch runs it: a local worker, or the Ray cluster of RAY_ADDRESS "
        "(submitted as a Ray job that reports over HTTP; 409 when no cluster is configured).",
    )
    gpus: int | None = Field(
        None, ge=0, le=1024, description="Ray runs: GPUs the job asks for (R1STUDIO_RAY_GPUS)."
    )

    @field_validator("name")
    @classmethod
    def _no_nul(cls, name: str) -> str:
        # PostgreSQL cannot store NUL characters in text.
        if "\x00" in name:
            raise ValueError("NUL characters (\\x00) are not allowed")
        return name


class ConfigErrorOut(Schema):
    loc: str = Field(description="Dotted path of the field, e.g. trainer.num_generations")
    msg: str


class ErrorOut(Schema):
    detail: str
    errors: list[ConfigErrorOut] = []


class CheckpointOut(Schema):
    step: int
    path: str


class RunOut(Schema):
    id: int
    name: str
    owner: str
    kind: str
    executor: str = Field("worker", description="worker, external or ray")
    status: str
    step: int
    total_steps: int | None
    progress: float
    eta_seconds: float | None
    error: str
    worker: str
    run_dir: str
    parent_id: int | None
    cancel_requested: bool
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    last_event_at: datetime | None
    url: str = Field(description="The run page")


class RunDetailOut(RunOut):
    config: dict[str, Any]
    traceback: str
    resume_from: str
    checkpoints: list[CheckpointOut]
    job_id: str = Field("", description="Ray runs: the job's submission id")
    job_state: dict[str, Any] = Field(
        default_factory=dict,
        description="Ray runs: the job as last seen (status, message, attempt, resources)",
    )


class RunCreatedOut(RunDetailOut):
    token: str | None = Field(
        None,
        description="External runs: the run's token for POST /api/runs/{id}/events, shown "
        "only this once (POST /api/runs/{id}/token makes a new one)",
    )


class RunTokenOut(Schema):
    token: str = Field(description="The run's new token (older ones are revoked)")


class SeriesOut(Schema):
    name: str
    steps: list[int]
    values: list[float | None]
    total: int
    shown: int


class TraceOut(Schema):
    id: int
    run_id: int
    step: int
    source: str
    benchmark: str
    prompt: str
    completion: str
    think: str | None
    answer: str | None
    reference: str
    rewards: dict[str, Any]
    reward: float | None
    advantage: float | None
    length: int
    correct: bool | None


class TracePageOut(Schema):
    items: list[TraceOut]
    next: str | None = Field(description="Pass as `after` for the next page; null at the end")
