"""Bounded decoding: every bad input gets its code, never an unhandled exception."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from verification_helpers import encode, synthetic_image

from verification import VerificationError
from verification.image import decode_image

LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pixels": 40_000_000}
DECODE_CODES = {"image_empty", "image_unreadable", "unsupported_format", "image_too_large"}


def code_of(data: bytes, **limits) -> str:
    with pytest.raises(VerificationError) as info:
        decode_image(data, **(LIMITS | limits))
    return info.value.code


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring width x height whose pixel data is one tiny compressed row: the header of
    a decompression bomb without the bomb (about 70 bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_allowed_formats_decode_to_bgr(ext):
    img = synthetic_image(80, 60)
    out = decode_image(encode(img, ext), **LIMITS)
    assert out.bgr.shape == (60, 80, 3) and out.bgr.dtype == np.uint8
    assert out.format == {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP"}[ext]
    # the red corner stays red in BGR order
    b, g, r = out.bgr[2, 2]
    assert r > 200 and b < 60 and g < 60


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "I;16", "CMYK"])
def test_other_pixel_modes_become_rgb(mode):
    img = Image.fromarray(synthetic_image(40, 30)[:, :, ::-1]).convert(
        "RGB" if mode in ("I;16",) else mode
    )
    if mode == "I;16":
        img = Image.fromarray(np.arange(1200, dtype=np.uint16).reshape(30, 40) * 50)
    buf = io.BytesIO()
    img.save(buf, format="JPEG" if mode == "CMYK" else "PNG")
    out = decode_image(buf.getvalue(), **LIMITS)
    assert out.bgr.shape == (30, 40, 3)


def test_exif_orientation_is_applied():
    img = Image.fromarray(synthetic_image(80, 40)[:, :, ::-1])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    out = decode_image(buf.getvalue(), **LIMITS)
    assert out.bgr.shape[:2] == (80, 40)


def test_empty_input():
    assert code_of(b"") == "image_empty"


def test_too_many_bytes_refused_before_decoding():
    assert code_of(encode(synthetic_image()), max_bytes=100) == "image_too_large"


def test_bomb_header_refused_without_decoding():
    bomb = png_header_only(100_000, 100_000)
    start = time.perf_counter()
    assert code_of(bomb) == "image_too_large"
    assert time.perf_counter() - start < 0.5


def test_pixel_limit_is_ours_not_pillows():
    # 50 MP declared: below Pillow's own guard (89 MP) but above our 40 MP default
    assert code_of(png_header_only(10_000, 5_000)) == "image_too_large"
    assert code_of(encode(synthetic_image(100, 100)), max_pixels=9_999) == "image_too_large"


def test_truncated_and_corrupt():
    jpg = encode(synthetic_image(200, 150))
    assert code_of(jpg[: len(jpg) // 2]) == "image_unreadable"
    assert code_of(jpg[:20]) == "image_unreadable"
    png = encode(synthetic_image(200, 150), ".png")
    assert code_of(png[: len(png) - 40]) == "image_unreadable"
    assert code_of(png_header_only(50, 50)) == "image_unreadable"  # one row of 50 present


@pytest.mark.parametrize(
    "fmt,expected",
    [("GIF", "unsupported_format"), ("BMP", "unsupported_format"), ("TIFF", "unsupported_format")],
)
def test_refused_formats(fmt, expected):
    buf = io.BytesIO()
    Image.fromarray(synthetic_image()[:, :, ::-1]).save(buf, format=fmt)
    assert code_of(buf.getvalue()) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is text",
        b"%PDF-1.4 ...",
        b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40,
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    ],
)
def test_non_images(data):
    assert code_of(data) == "unsupported_format"


def test_not_bytes_is_a_programming_error():
    with pytest.raises(TypeError):
        decode_image("a string", **LIMITS)  # type: ignore[arg-type]


def _decode_or_code(data: bytes) -> None:
    try:
        out = decode_image(data, **LIMITS)
    except VerificationError as exc:
        assert exc.code in DECODE_CODES
    else:
        assert out.bgr.ndim == 3 and out.bgr.shape[2] == 3


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_never_crash(data):
    _decode_or_code(data)


JPEG = encode(synthetic_image(64, 48))
PNG = encode(synthetic_image(64, 48), ".png")
WEBP = encode(synthetic_image(64, 48), ".webp")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([JPEG, PNG, WEBP]),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=12),
    st.integers(0, 10_000),
)
def test_mutated_real_images_never_crash(base, flips, cut):
    data = bytearray(base)
    for pos, value in flips:
        data[pos % len(data)] = value
    _decode_or_code(bytes(data[: max(1, len(data) - cut % len(data))]))
