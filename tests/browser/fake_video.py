"""A camera video whose every frame says which frame it is, for Chromium's --use-file-for-fake-video-capture.

Frame i shows a photo (the photos take turns every `per_photo` frames) between two bands, at the left and right
edges, that spell i in binary as black and white stripes (the top stripe is the highest bit). Stripes run the
whole band's width and the bands are the same on both sides, so the code reads the same on the mirrored preview,
in a screenshot, in a grabbed JPEG frame or on a canvas; the photo sits in the middle square that the model looks at.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

BITS = 7
BAND = 0.075  # each band's width, as a share of the frame's width
WHITE, BLACK = 235, 16  # limited-range luma, as I420 carries it


def _photo(path: Path, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(ImageOps.fit(ImageOps.exif_transpose(Image.open(path)).convert("RGB"), size), dtype=np.float32)


def _yuv420(rgb: np.ndarray) -> bytes:
    """RGB (H, W, 3) floats to I420 planes, BT.601 limited range (what the y4m reader expects)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b

    def half(plane: np.ndarray) -> np.ndarray:  # 2x2 means
        return (plane[0::2, 0::2] + plane[1::2, 0::2] + plane[0::2, 1::2] + plane[1::2, 1::2]) / 4

    planes = [y, half(u), half(v)]
    return b"".join(np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in planes)


def write_y4m(path: Path, photos: list[Path], *, frames: int = 120, fps: int = 15, per_photo: int = 30,
              size: tuple[int, int] = (640, 480)) -> Path:
    """Write the video; `frames` must fit in BITS bits. Returns `path`."""
    assert frames <= 2 ** BITS and photos
    width, height = size
    band = round(width * BAND)
    pictures = [_photo(p, size) for p in photos]
    luma_rows = np.repeat(np.arange(BITS), -(-height // BITS))[:height]  # the stripe each row belongs to
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            rgb = pictures[(i // per_photo) % len(pictures)].copy()
            bits = (i >> (BITS - 1 - luma_rows)) & 1  # per row: the bit of its stripe
            value = np.where(bits == 1, 255.0, 0.0)[:, None]
            rgb[:, :band] = value[..., None]
            rgb[:, width - band:] = value[..., None]
            out.write(b"FRAME\n" + _yuv420(rgb))
    return path


def read_code(image: Image.Image, sides: tuple[str, ...] = ("left", "right")) -> int:
    """The frame number spelt by the bands of a picture of one frame (any size, mirrored or not).

    A screenshot of the live page reads only the right band: the label sits over the bottom of the left one.
    """
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    height, width = gray.shape
    band = max(4, round(width * BAND))
    # The middle of each band and of each stripe: away from the edges that scaling and JPEG blur.
    strips = {"left": gray[:, band // 4: band * 3 // 4], "right": gray[:, width - band * 3 // 4: width - band // 4]}
    columns = np.concatenate([strips[side] for side in sides], axis=1)
    code = 0
    stripe = height / BITS
    for bit in range(BITS):
        level = columns[int(bit * stripe + stripe * 0.3): int(bit * stripe + stripe * 0.7)].mean()
        code = code * 2 + int(level > 128)
    return code
