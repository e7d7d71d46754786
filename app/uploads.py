"""Turning uploaded files into stored samples: all good files kept, bad ones named, nothing half-done."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from app import crud, images
from app.config import Settings
from app.ml.preprocess import resize_center_crop
from app.models import Sample
from app.storage import ORIGINAL, THUMB, WORK, BlobStore, input_kind, new_key


@dataclass
class Prepared:
    filename: str
    key: str
    decoded: images.DecodedImage


@dataclass
class UploadResult:
    added: list[Sample] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)


def prepare_file(data: bytes, filename: str, settings: Settings) -> images.DecodedImage:
    # Draft-decode big JPEGs straight to about the working size: the originals are kept as bytes anyway.
    return images.decode(data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels,
                         min_side=settings.work_image_side)


def store_files(files: list[tuple[str, bytes]], *, session: Session, store: BlobStore, settings: Settings,
                class_id: int, input_size: int, source: str = "upload", burst_id: str | None = None) -> UploadResult:
    """Validate and store every file. Files are written before the rows; if the rows fail, the files go."""
    result = UploadResult()
    written: list[str] = []
    try:
        for filename, data in files:
            try:
                decoded = prepare_file(data, filename, settings)
            except images.ImageRejected as exc:
                result.rejected.append({"filename": filename, "error": str(exc)})
                continue
            key = new_key()
            work = images.fit_shorter_side(decoded.image, settings.work_image_side)
            store.put(key, {
                ORIGINAL: data, WORK: images.to_jpeg(work, 92),
                THUMB: images.to_jpeg(images.thumbnail(work, settings.thumbnail_side), 85),
                input_kind(input_size): images.to_npy(resize_center_crop(decoded.image, input_size)),
            })
            written.append(key)
            result.added.append(crud.add_sample(
                session=session, class_id=class_id, key=key, filename=filename[:255],
                original_format=decoded.format, width=decoded.width, height=decoded.height,
                source=source, burst_id=burst_id))
    except BaseException:
        for key in written:
            store.delete(key)
        raise
    return result
