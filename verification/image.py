"""Bounded image decoding: bytes in, an upright BGR array out, or a coded refusal.

Order matters (cheapest and safest checks first):

1. empty input -> ``image_empty``; more than ``max_bytes`` -> ``image_too_large``;
2. the magic number picks the format: JPEG, PNG, WebP pass; GIF, BMP, TIFF, HEIC/AVIF, PDF and
   anything unrecognised -> ``unsupported_format`` (the file name and declared type are ignored);
3. Pillow's lazy ``Image.open`` reads the header only; width x height above ``max_pixels`` ->
   ``image_too_large`` *before* any pixel is decoded (decompression bombs). Pillow's own global
   bomb guard (``Image.MAX_IMAGE_PIXELS``) is left untouched; its error also maps to
   ``image_too_large``;
4. decode (large JPEGs at a reduced DCT scale, see :func:`decode_image`); a corrupt or truncated
   file -> ``image_unreadable``;
5. EXIF orientation applied, colour converted to 8-bit BGR (OpenCV's order).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps

from verification.errors import VerificationError

#: Formats decoded, by Pillow format name.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP")

#: Magic numbers of formats we recognise but refuse (name for the error message).
_REFUSED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "PSD"),
)


@dataclass(frozen=True)
class DecodedImage:
    """An upright image ready for detection.

    ``bgr``: ``uint8`` array of shape (height, width, 3), BGR order, EXIF orientation applied.
    ``format``: ``"JPEG"``, ``"PNG"`` or ``"WEBP"``. ``original_size``: (width, height) in pixels as
    declared by the file (before any reduced-scale decoding or rotation). ``scale``: decoded pixels
    per original pixel (1.0, or 0.5/0.25/0.125 for reduced-scale JPEG decoding).
    """

    bgr: np.ndarray
    format: str
    original_size: tuple[int, int]
    scale: float


def sniff_format(data: bytes) -> str | None:
    """The allowed format named by the magic number at the start of ``data``, else ``None``.

    Raises ``unsupported_format`` for a recognised but refused format (GIF, BMP, TIFF, HEIC, ...).
    """
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":  # ISO media: HEIC/HEIF/AVIF from phones
        brand = data[8:12].decode("latin-1", "replace")
        raise VerificationError(
            "unsupported_format", f"ISO media image (brand {brand!r}); send JPEG", format=brand
        )
    for magic, name in _REFUSED_MAGIC:
        if data.startswith(magic):
            raise VerificationError("unsupported_format", f"{name} image; send JPEG", format=name)
    return None


def read_header(data: bytes, *, max_pixels: int) -> Image.Image:
    """Open ``data`` lazily (header only) and enforce the pixel limit.

    Returns the un-decoded Pillow image. Raises ``image_too_large`` when width x height exceeds
    ``max_pixels`` (or Pillow's own bomb guard fires), ``image_unreadable`` when the header is bad.
    """
    fmt = sniff_format(data)
    if fmt is None:
        raise VerificationError("unsupported_format", "not a JPEG, PNG or WebP image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise VerificationError(
            "image_too_large", "image dimensions exceed the decoder's limit", max_pixels=max_pixels
        ) from exc
    except Exception as exc:  # any header failure is an unreadable file
        raise VerificationError("image_unreadable", f"bad {fmt} header: {exc}") from exc
    width, height = img.size
    if width <= 0 or height <= 0:
        raise VerificationError("image_unreadable", "image has no pixels", size=[width, height])
    if width * height > max_pixels:
        raise VerificationError(
            "image_too_large",
            f"{width}x{height} exceeds {max_pixels} pixels",
            width=width,
            height=height,
            max_pixels=max_pixels,
        )
    return img


def decode_image(
    data: bytes, *, max_bytes: int, max_pixels: int, max_side: int | None = None
) -> DecodedImage:
    """Decode ``data`` within the limits (see the module docstring for the order of checks).

    ``max_bytes``: largest file in bytes. ``max_pixels``: largest width x height.
    ``max_side``: when set, a JPEG whose long side exceeds it is decoded by libjpeg at the
    smallest 1/2, 1/4 or 1/8 scale that keeps the long side >= ``max_side`` px (several times
    cheaper than a full decode; faces stay far above the 112 px SFace needs).
    Raises :class:`VerificationError` with ``image_empty``, ``image_too_large``,
    ``unsupported_format`` or ``image_unreadable``; never another exception for bad bytes.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"image must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise VerificationError("image_empty", "no bytes received")
    if len(data) > max_bytes:
        raise VerificationError(
            "image_too_large",
            f"{len(data)} bytes exceeds {max_bytes}",
            bytes=len(data),
            max_bytes=max_bytes,
        )
    img = read_header(data, max_pixels=max_pixels)
    fmt = img.format or "?"
    original_size = img.size
    try:
        if fmt == "JPEG" and max_side and max(img.size) > max_side:
            w, h = img.size
            k = max_side / max(w, h)
            img.draft("RGB", (max(1, int(w * k)), max(1, int(h * k))))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
            img = ImageOps.exif_transpose(img) or img
            rgb = _to_rgb(img)
    except VerificationError:
        raise
    except Exception as exc:  # truncated/corrupt data surfaces as many types
        raise VerificationError("image_unreadable", f"cannot decode {fmt}: {exc}") from exc
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)  # the same bytes as rgb[:, :, ::-1], 10x faster
    scale = max(bgr.shape[:2]) / max(original_size)
    return DecodedImage(bgr=bgr, format=fmt, original_size=original_size, scale=scale)


def _to_rgb(img: Image.Image) -> np.ndarray:
    """8-bit RGB array (height, width, 3) from any Pillow mode (L, LA, P, RGBA, CMYK, I;16 ...).

    Transparent pixels are composited on white: a PNG with alpha keeps a readable face.
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = float(arr.max()) or 1.0
        grey = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise VerificationError("image_unreadable", "decoded image has no usable pixels")
    return arr
