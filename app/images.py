"""Decode and validate one uploaded image: the only place that trusts nothing.

What an image is comes from decoding its bytes, never from its name or content type.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# A truncated file is an error, not half a picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageRejected(ValueError):
    """The bytes are not an image we accept; the message says why, in words for the user."""


@dataclass
class DecodedImage:
    image: Image.Image  # RGB, EXIF orientation applied, first frame
    format: str  # what the decoder found: JPEG, PNG, GIF, WEBP, ...
    width: int
    height: int


def decode(data: bytes, *, max_bytes: int, max_pixels: int, min_side: int | None = None) -> DecodedImage:
    """Decode bytes into an upright RGB image, or raise ImageRejected.

    `min_side` lets JPEG decoding scale down in the DCT (draft mode) while keeping
    the shorter side at least that long: a 12 MP photo decodes ~8x faster.
    """
    if not data:
        raise ImageRejected("the file is empty")
    if len(data) > max_bytes:
        raise ImageRejected(f"the file is larger than {max_bytes // (1024 * 1024)} MB")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between max_pixels and twice that; refuse the whole range.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _open_checked(data, max_pixels)
            fmt = img.format or "unknown"
            width, height = img.size
            if min_side and fmt == "JPEG":
                scale = min_side / min(width, height)
                if scale < 1:
                    img.draft("RGB", (int(width * scale) + 1, int(height * scale) + 1))
            img.seek(0)  # first frame of an animation
            if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientations that turn by 90 degrees
                width, height = height, width
            img.load()
            img = _to_rgb(ImageOps.exif_transpose(img))
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(f"the image has more than {max_pixels:,} pixels") from None
    except UnidentifiedImageError:
        raise ImageRejected("not an image file we can read (JPEG, PNG, GIF, WebP, BMP, TIFF)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageRejected(f"the image is damaged or truncated ({exc})") from None
    if min(width, height) < 8:
        raise ImageRejected(f"the image is too small ({width}x{height} pixels)")
    return DecodedImage(img, fmt, width, height)


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    w, h = img.size
    if w * h > max_pixels:
        raise ImageRejected(f"the image has more than {max_pixels:,} pixels ({w}x{h})")
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any mode to 8-bit RGB; transparency goes onto white, 16-bit is scaled, not clipped."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype("uint8")
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode == "F":
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo or 1.0) * 255.0
        return Image.fromarray(arr.astype("uint8"), "L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img).convert("RGB")
    return img.convert("RGB")


def fit_shorter_side(img: Image.Image, side: int) -> Image.Image:
    """Scale down (never up) so the shorter side is at most `side`."""
    w, h = img.size
    scale = side / min(w, h)
    if scale >= 1:
        return img
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)


def thumbnail(img: Image.Image, side: int) -> Image.Image:
    """A square thumbnail, center-cropped, for galleries."""
    return ImageOps.fit(img, (side, side), Image.BILINEAR)


def to_jpeg(img: Image.Image, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def to_npy(img: Image.Image) -> bytes:
    """Raw uint8 RGB pixels in .npy format: read back with no decoding and no loss."""
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.asarray(img.convert("RGB"), dtype=np.uint8), allow_pickle=False)
    return buf.getvalue()
