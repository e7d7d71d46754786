"""Request and response bodies of the JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from app.names import name_key, normalize_name


class Body(BaseModel):
    """A request body: JSON types are taken as they are, so `false` is no 0 and `"5"` no 5 (a JSON integer
    still fills a number field)."""

    model_config = ConfigDict(strict=True, protected_namespaces=())


def _name(max_length: int):
    def check(value: str) -> str:
        value = normalize_name(value)
        if len(value) > max_length:  # NFKC can lengthen a name ("ﷺ" is 18 letters)
            raise ValueError(f"must be at most {max_length} characters")
        return value

    description = ("normalized: NFKC, invisible characters removed, white space collapsed; control characters "
                   "are refused")
    return Annotated[str, Field(min_length=1, max_length=max_length, description=description),
                     AfterValidator(check)]


ProjectName = _name(200)
ClassName = _name(100)


class ProjectCreate(Body):
    name: ProjectName
    backbone: str | None = Field(default=None, description="a registry name from /api/health")
    base_model_id: int | None = Field(
        default=None, description="start from another project's model: reuse its (fine-tuned) backbone")
    classes: list[ClassName] = Field(
        default=[], max_length=50, description="empty classes to make at once, in order (the home page sends "
        "[\"Class 1\", \"Class 2\"], as Teachable Machine starts); names must differ (case-insensitively)")

    @model_validator(mode="after")
    def _distinct_classes(self) -> ProjectCreate:
        keys = [name_key(n) for n in self.classes]
        if len(set(keys)) != len(keys):
            raise ValueError("classes: two class names are the same (names compare case-insensitively)")
        return self


class ProjectRename(Body):
    name: ProjectName


class ClassCreate(Body):
    name: ClassName = Field(description="unique in its project, compared case-insensitively after normalizing")


class ClassUpdate(Body):
    """Either field or both; an empty body changes nothing."""

    name: ClassName | None = Field(default=None, description="unique in its project, compared case-insensitively")
    enabled: bool | None = Field(default=None, description="use in training: false leaves the class and its "
                                 "photos in place, out of the next training")


class ClassOut(BaseModel):
    id: int
    name: str
    sample_count: int
    color: str = Field(description="CSS hex colour the class keeps everywhere (cards, bars, matrix)")
    enabled: bool = Field(description="use in training: false leaves the class and its photos out of training")


class ExportOut(BaseModel):
    """A download format of this model: where its build stands and, once built, how it agreed with the served
    model on the held-out photos."""

    format: str
    status: Literal["built", "queued", "building", "failed", "not_built"] = Field(description=(
        "built: checked, the fields below are its report; queued / building: POST /api/models/{id}/exports "
        "asked for it; failed: its build raised, `reason` says why (asking again retries); not_built: nobody "
        "asked yet (a download builds it too)"))
    file_name: str = Field(description="the name its download gets")
    agreement: float | None = Field(
        default=None, description="top-1 agreement with the served model (0-1) on the photos checked; null until "
        "built, or when there was no photo to check it on")
    max_prob_diff: float | None = Field(default=None, description="largest difference of any class probability")
    size_bytes: int | None = Field(default=None, description="the file's size; null until built")
    photos: int | None = Field(default=None, description="how many photos were checked; null until built")
    checked_on: str | None = Field(default=None, description="which photos: held-out, or training ones")
    offered: bool | None = Field(default=None, description=(
        "false when the file disagrees (its download answers 409 with `reason`) or its build failed; null "
        "until built"))
    reason: str | None = None
    unknown_threshold: float | None = Field(default=None, description="onnx-int8: its own threshold")
    build_seconds: float | None = Field(default=None, description="building and checking it took this long")


class ModelOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    id: int
    project_id: int
    version: int
    backbone: str
    features: str
    mode: str
    labels: list[str]
    created_at: datetime
    is_current: bool
    unknown_threshold: float | None
    unknown_threshold_calibrated: float | None
    metrics: dict
    # Only in GET /api/models/{id}: every download format, built (and checked) or not yet.
    exports: list[ExportOut] = []


class ModelUpdate(Body):
    unknown_threshold: float | None = Field(
        default=None, ge=-1, le=1, description="similarity below which the answer is \"unknown\"")
    reset_unknown_threshold: bool = Field(default=False, description="back to the calibrated value")


class PredictionRow(BaseModel):
    """How the model judged one validation photo (with cross-validation, by the head that never saw it)."""

    sample_id: int | None = Field(description="the photo; null where a project file did not carry it")
    true: int = Field(description="its class: an index into the model's labels")
    predicted: int = Field(description="the model's answer: an index into the model's labels")
    loss: float = Field(description="-log of the probability given to its true class: higher is worse")
    score: float = Field(description="the probability of the answer (0-1)")
    burst_id: str | None = Field(default=None, description="the webcam recording it came from, if one")
    similar: int = Field(default=1, description="with group=burst: how many photos this row stands for (frames "
                         "of one recording with the same class and answer; the worst is shown)")


class PredictionsOut(BaseModel):
    total: int = Field(description="rows matching, in all pages (with group=burst: one per recording)")
    photos: int = Field(description="validation photos matching (with group=burst, at least total)")
    rows: list[PredictionRow] = Field(description="this page: worst first (highest loss; then by photo)")


class ProjectOut(BaseModel):
    id: int
    name: str
    backbone: str
    created_at: datetime
    class_count: int
    sample_count: int
    current_model_id: int | None


class ProjectDetail(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    id: int
    name: str
    backbone: str
    base_model_id: int | None
    created_at: datetime
    classes: list[ClassOut]
    model: ModelOut | None
    active_job_id: int | None
    owner: str | None = Field(description="the owner's user name; null for a project made with login off, "
                              "before any admin account existed")
    role: Literal["owner", "editor", "viewer"] = Field(
        description="what you may do here: viewer (see, predict, download), editor (also change and train), "
        "owner (also rename, delete, share, change members; admins are owners of every project)")


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


class RestoredOut(BaseModel):
    """What an undo put back, with the ids they had."""

    kind: Literal["samples", "class"]
    project_id: int
    classes: list[ClassOut] = Field(description="the class put back (kind \"class\"), else empty")
    samples: list[SampleOut]


class Rejected(BaseModel):
    filename: str
    error: str


class UploadOut(BaseModel):
    added: list[SampleOut]
    rejected: list[Rejected]


class UploadRefusedOut(BaseModel):
    """422 when no file of an upload was a valid image: nothing was stored."""

    detail: str
    rejected: list[Rejected]


class TrainRequest(Body):
    """Every field but `mode` is optional: the defaults just work."""

    mode: Literal["auto", "head", "finetune"] = Field(
        default="auto", description="head: frozen backbone, cached embeddings; finetune: head, then the last "
        "blocks unfrozen at a lower learning rate with augmentation; auto: picks by device, data and time")
    recipe: Literal["snapclass", "teachable-machine"] | None = Field(
        default=None, description="head recipe: snapclass's (default) or Teachable Machine's (Dense 100 + ReLU + "
        "Dense K, Adam 1e-3, batch 16, 50 epochs)")
    epochs: int | None = Field(default=None, ge=1, le=500, description="head epochs")
    batch_size: int | None = Field(default=None, ge=1, le=1024)
    learning_rate: float | None = Field(default=None, gt=0, le=1, description="head learning rate")
    hidden: int | None = Field(default=None, ge=1, le=4096, description="head hidden units")
    dropout: float | None = Field(default=None, ge=0, lt=1)
    label_smoothing: float | None = Field(default=None, ge=0, lt=1)
    augment_views: int | None = Field(default=None, ge=0, le=16,
                                      description="augmented embeddings per training image (head mode)")
    augment: bool | None = Field(default=None, description="augmentation while fine-tuning")
    unfreeze: int | None = Field(default=None, ge=1, le=20, description="blocks unfrozen, from the output end")
    finetune_epochs: int | None = Field(default=None, ge=1, le=200)
    finetune_learning_rate: float | None = Field(default=None, gt=0, le=1)
    folds: int | None = Field(default=None, ge=1, le=10,
                              description="cross-validation folds of snapclass's head (default 5); 1: one "
                              "validation split of val_fraction instead, as the other modes use")
    val_fraction: float | None = Field(default=None, ge=0, le=0.5,
                                       description="validation share of a single split (fine-tuning, the "
                                       "Teachable-Machine recipe, folds=1)")
    class_weights: bool | None = Field(default=None, description="weigh each class by the inverse of its photo "
                                       "count in the loss, so a small class counts as much as a big one "
                                       "(default true; false trains unweighted)")
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
    predictions: list[Prediction] = Field(description="every class, by score; scores sum to 1")
    label: str = Field(description='the top class, or "unknown" below the similarity threshold')
    unknown: bool
    similarity: float | None = Field(description="mean cosine similarity to the 5 nearest training images")
    unknown_threshold: float | None


class BackboneOut(BaseModel):
    name: str
    title: str
    available: bool


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str
    device: str
    backbones: list[BackboneOut]


class ShareOut(BaseModel):
    url: str | None = Field(description="the public page; POST {url}/predict answers like /predict")


# --- accounts ---

Username = Field(min_length=1, max_length=64, description="letters, digits and . _ - @ + (case does not matter)")
Password = Field(min_length=8, max_length=256)


class LoginIn(Body):
    username: str = Field(max_length=200)
    password: str = Field(max_length=1000)


class MeOut(BaseModel):
    username: str
    is_admin: bool
    local: bool = Field(description="the implicit local user of a server with login off")


class AuthStatus(BaseModel):
    login_required: bool
    setup_needed: bool = Field(description="no account exists yet: the first is made at /setup")
    user: MeOut | None


class SetupIn(Body):
    code: str = Field(max_length=100, description="the one-time code `snapclass serve` printed in its log")
    username: str = Username
    password: str = Password


class PasswordChange(Body):
    current_password: str = Field(max_length=1000)
    new_password: str = Password


class TokenCreate(Body):
    name: _name(100) = Field(description="what the token is for, e.g. 'lab laptop'")


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="the token's first characters, to tell tokens apart")
    created_at: datetime
    last_used_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="shown this once; only its hash is stored")


class UserOut(BaseModel):
    id: int
    username: str
    is_admin: bool
    created_at: datetime
    project_count: int


class UserCreate(Body):
    username: str = Username
    password: str | None = Field(default=None, min_length=8, max_length=256,
                                 description="omit to have one generated (shown once in the answer)")
    is_admin: bool = False


class UserCreated(BaseModel):
    username: str
    is_admin: bool
    password: str | None = Field(description="the generated password, shown this once; null if you chose one")


class UsersBulkCreate(Body):
    usernames: list[str] = Field(min_length=1, max_length=500, description="e.g. a class list")
    is_admin: bool = False


class Skipped(BaseModel):
    username: str
    reason: str


class UsersBulkCreated(BaseModel):
    created: list[UserCreated]
    skipped: list[Skipped]


class UserUpdate(Body):
    is_admin: bool


class PasswordReset(Body):
    password: str | None = Field(default=None, min_length=8, max_length=256,
                                 description="omit to have one generated (shown once in the answer)")


class MemberIn(Body):
    username: str = Field(min_length=1, max_length=200)
    role: Literal["viewer", "editor"]


class MemberOut(BaseModel):
    username: str
    role: Literal["owner", "editor", "viewer"]
