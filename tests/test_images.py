"""Upload decoding: what an image is comes from its bytes; every mode ends up upright RGB."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.images import ImageRejected, decode
from tests.conftest import dataset

LIMITS = {"max_bytes": 5_000_000, "max_pixels": 4_000_000}


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_palette_gif_from_the_dataset_becomes_rgb():
    data = (dataset("hymenoptera", "train", "ants") / "imageNotFound.gif").read_bytes()
    out = decode(data, **LIMITS)
    assert out.format == "GIF" and out.image.mode == "RGB"


def test_rgba_png_is_composited_on_white():
    img = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    out = decode(encode(img, "PNG"), **LIMITS)
    assert out.image.mode == "RGB" and out.image.getpixel((5, 5)) == (255, 255, 255)


def test_cmyk_jpeg_becomes_rgb():
    img = Image.new("CMYK", (20, 20), (0, 255, 255, 0))  # red in CMYK
    px = decode(encode(img, "JPEG"), **LIMITS).image.getpixel((10, 10))
    assert px[0] > 200 and px[1] < 60 and px[2] < 60


def test_sixteen_bit_png_is_scaled_not_clipped():
    arr = np.full((16, 16), 32768, dtype=np.uint16)  # half of full scale
    out = decode(encode(Image.fromarray(arr), "PNG"), **LIMITS)
    assert 120 <= out.image.getpixel((3, 3))[0] <= 135


def test_animation_gives_its_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    px = decode(data, **LIMITS).image.getpixel((8, 8))
    assert px[0] > 200 and px[2] < 60


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 20, 20))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = decode(encode(img, "JPEG", exif=exif), **LIMITS)
    assert out.image.size == (20, 40) and (out.width, out.height) == (20, 40)
    assert out.image.getpixel((10, 5))[0] > 200  # white half is now on top


def test_name_and_type_are_ignored_only_bytes_count():
    with pytest.raises(ImageRejected, match="not an image"):
        decode(b"hello, I am a text file named photo.jpg", **LIMITS)


def test_decompression_bomb_is_refused_before_decoding():
    # A tiny PNG that claims 3000 x 3000 pixels, over the 4 MP limit.
    data = encode(Image.new("L", (3000, 3000)), "PNG", optimize=True)
    assert len(data) < 100_000
    with pytest.raises(ImageRejected, match="pixels"):
        decode(data, **LIMITS)


def test_oversized_file_is_refused():
    with pytest.raises(ImageRejected, match="larger than"):
        decode(b"\xff" * 100, max_bytes=50, max_pixels=1000)


def test_truncated_jpeg_is_refused():
    data = encode(Image.effect_noise((256, 256), 60).convert("RGB"), "JPEG")
    with pytest.raises(ImageRejected, match="damaged or truncated"):
        decode(data[: len(data) // 2], **LIMITS)


def test_empty_and_tiny_images_are_refused():
    with pytest.raises(ImageRejected, match="empty"):
        decode(b"", **LIMITS)
    with pytest.raises(ImageRejected, match="too small"):
        decode(encode(Image.new("RGB", (4, 4)), "PNG"), **LIMITS)


def test_draft_decoding_keeps_the_shorter_side_at_least_the_asked_size():
    big = Image.effect_noise((2000, 1200), 40).convert("RGB")
    out = decode(encode(big, "JPEG"), max_bytes=10_000_000, max_pixels=4_000_000, min_side=288)
    assert min(out.image.size) >= 288 and min(out.image.size) < 1200
    assert (out.width, out.height) == (2000, 1200)  # the recorded size is the original's
