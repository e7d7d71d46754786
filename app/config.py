"""Settings: the one reader of the environment (variables prefixed SNAPCLASS_, plus DATABASE_URL)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.crosssite import parse_origin_list


class Settings(BaseSettings):
    # populate_by_name: Settings(cache_path=...) works too (the tests share one derived-files cache that way).
    model_config = SettingsConfigDict(env_prefix="SNAPCLASS_", extra="ignore", populate_by_name=True)

    data_dir: Path = Path("data")
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "SNAPCLASS_DATABASE_URL")
    )
    # Derived files only (ONNX graphs, export files): may be shared, deleted, rebuilt.
    cache_path: Path | None = Field(default=None, validation_alias=AliasChoices("SNAPCLASS_CACHE_DIR"))
    # "auto" picks cuda:0 when PyTorch sees a GPU, else cpu.
    device: str = "auto"
    # The worker's runtime: "auto" is PyTorch on CUDA and ONNX Runtime on the CPU; "torch" forces the
    # CUDA code path (channels-last PyTorch) on whatever device, so it can be tested without a GPU.
    worker_runtime: str = "auto"
    default_backbone: str = "efficientnet_lite0"

    # Accounts. "auto": login required unless the server listens on a loopback address only.
    auth: Literal["auto", "required", "off"] = "auto"
    # The address `serve` listens on (set by the CLI); "auto" decides by it. In-process test clients are local.
    listen_host: str = "127.0.0.1"
    listen_port: int = 8000
    session_days: int = Field(default=14, ge=1, le=365)
    # Repeated login failures for one name or one address are slowed down: this many go unpunished.
    login_free_failures: int = Field(default=5, ge=1)

    max_upload_bytes: int = 25 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_files_per_upload: int = 500
    # Stored working copy: shorter side at most this, enough for 288-px inputs and augmented crops.
    work_image_side: int = 352
    thumbnail_side: int = 160

    # Project files (app/projectfile): an import is checked against these from the zip's directory before
    # anything is unpacked, and again while reading (declared sizes are never trusted).
    project_file_max_bytes: int = Field(default=4 * 1024**3, ge=1)  # the uploaded zip
    project_file_max_entries: int = Field(default=100_000, ge=2)
    project_file_max_unpacked_bytes: int = Field(default=8 * 1024**3, ge=1)
    # Photos and weights barely compress; a larger ratio on a sizeable entry is a zip bomb.
    project_file_max_ratio: int = Field(default=100, ge=1)
    project_file_max_manifest_bytes: int = Field(default=64 * 1024**2, ge=1)

    # One machine or many (API.md). A Redis URL: jobs go to that queue and `snapclass worker` processes run them;
    # serve then never trains. None: the worker thread inside serve.
    queue_url: str | None = None
    # s3://bucket/prefix: photos live in that S3-compatible store (AWS_* settings, AWS_ENDPOINT_URL for MinIO);
    # None: under the data dir.
    blob_url: str | None = None

    # Other sites whose pages may send us state-changing requests and open WebSockets, comma-separated
    # ("https://a.example,http://b:8080"); our own origin (scheme + Host) always may. NoDecode: not JSON.
    allowed_origins: Annotated[list[str], NoDecode] = []

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value) -> list[str]:
        return parse_origin_list(value)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'snapclass.db'}"

    @property
    def login_required(self) -> bool:
        if self.auth == "auto":
            return not is_loopback(self.listen_host)
        return self.auth == "required"

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def cache_dir(self) -> Path:
        """Derived files (ONNX graphs, exports): safe to delete, rebuilt on demand."""
        return self.cache_path or self.data_dir / "cache"


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost may resolve to any interface
        return False
