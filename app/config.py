"""Settings: the one reader of the environment (variables prefixed SNAPCLASS_, plus DATABASE_URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.crosssite import parse_origin_list


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SNAPCLASS_", extra="ignore")

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

    max_upload_bytes: int = 25 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_files_per_upload: int = 500
    # Stored working copy: shorter side at most this, enough for 288-px inputs and augmented crops.
    work_image_side: int = 352
    thumbnail_side: int = 160

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
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def cache_dir(self) -> Path:
        """Derived files (ONNX graphs, exports): safe to delete, rebuilt on demand."""
        return self.cache_path or self.data_dir / "cache"
