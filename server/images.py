"""Showing a stored face image to staff: re-encoded as a bounded JPEG, which drops EXIF data
(GPS among it) and anything that is not a picture. The files themselves are
:mod:`server.storage`."""

from __future__ import annotations

import io


def as_jpeg(data: bytes, *, max_bytes: int, max_pixels: int, max_side: int = 1024) -> bytes:
    """Re-encode ``data`` within the verifier's bounds (``max_bytes``, ``max_pixels``): the
    header is checked before any pixel is decoded (issue 13, finding 3: a stored 13000x13000
    PNG took 4 s and 2.2 GB here). Raises ``ValueError`` (or the image library's error) for
    anything that is not a picture within the bounds."""
    from PIL import ImageOps

    from verification.image import read_header

    if len(data) > max_bytes:
        raise ValueError("stored image above the byte limit")
    with read_header(data, max_pixels=max_pixels) as img:
        if img.format == "JPEG":
            img.draft("RGB", (max_side, max_side))  # decode JPEGs at a reduced scale
        img = ImageOps.exif_transpose(img).convert("RGB")
        img.thumbnail((max_side, max_side))
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=88)
    return out.getvalue()
