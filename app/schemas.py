"""Request and response bodies of the JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Name = Field(min_length=1, max_length=100)


def _strip(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


class ProjectCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    backbone: str | None = None
    _strip = field_validator("name")(_strip)


class ProjectRename(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    _strip = field_validator("name")(_strip)


class ClassCreate(BaseModel):
    name: str = Name
    _strip = field_validator("name")(_strip)


class ClassOut(BaseModel):
    id: int
    name: str
    sample_count: int


class ModelOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    id: int
    version: int
    backbone: str
    mode: str
    labels: list[str]
    created_at: datetime
    is_current: bool
    metrics: dict


class ProjectOut(BaseModel):
    id: int
    name: str
    backbone: str
    created_at: datetime
    class_count: int
    sample_count: int
    current_model_id: int | None


class ProjectDetail(BaseModel):
    id: int
    name: str
    backbone: str
    created_at: datetime
    classes: list[ClassOut]
    model: ModelOut | None
    active_job_id: int | None


class SampleOut(BaseModel):
    id: int
    class_id: int
    filename: str
    width: int
    height: int
    source: str
    burst_id: str | None
    created_at: datetime
    url: str
    thumbnail_url: str


class Rejected(BaseModel):
    filename: str
    error: str


class UploadOut(BaseModel):
    added: list[SampleOut]
    rejected: list[Rejected]


class TrainRequest(BaseModel):
    mode: Literal["auto", "head", "finetune"] = "auto"
    epochs: int | None = Field(default=None, ge=1, le=500)
    batch_size: int | None = Field(default=None, ge=1, le=1024)
    learning_rate: float | None = Field(default=None, gt=0, le=1)
    hidden: int | None = Field(default=None, ge=1, le=4096)
    val_fraction: float | None = Field(default=None, ge=0, le=0.5)
    seed: int | None = Field(default=None, ge=0)


class JobCreated(BaseModel):
    job_id: int


class JobOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    id: int
    project_id: int
    kind: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: float
    message: str
    metrics: dict
    model_id: int | None
    params: dict
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class Prediction(BaseModel):
    label: str
    score: float


class PredictOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_id: int
    model_version: int
    predictions: list[Prediction]


class BackboneOut(BaseModel):
    name: str
    title: str
    available: bool


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str
    device: str
    backbones: list[BackboneOut]
