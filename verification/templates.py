"""Face templates: one embedding plus what made it, serialisable for the database.

A template records its ``embedder`` (``"sface"`` / ``"dlib"``) and the SHA-256 of the model file
that produced it; vectors of different kinds are never compared (``template_incompatible``).
Storage forms: :meth:`Template.to_dict` (JSON-ready, vector as base64 of little-endian float32)
and :meth:`Template.to_bytes` (that dict as compact UTF-8 JSON). Templates are biometric data:
the server encrypts them at rest and purges them after the retention period.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from verification.errors import VerificationError

#: Format version written into every serialised template.
TEMPLATE_VERSION = 1
#: Length of every embedding vector we produce (SFace and dlib are both 128-d).
VECTOR_DIM = 128
#: Where a template came from. Only ``enrolment`` templates are never evicted.
SOURCES = ("enrolment", "checkin", "staff")


@dataclass(frozen=True, eq=False)
class Template:
    """One reference face.

    ``vector``: float32 array of shape (128,). ``quality``: the measurements of the source photo
    (:class:`verification.quality.Quality` as a dict). ``created``: timezone-aware UTC time.
    ``image_sha256`` / ``image_phash``: hashes of the source photo, so a later
    selfie that copies it is refused as ``replayed_image``.
    """

    embedder: str
    model_sha256: str
    vector: np.ndarray
    quality: dict[str, Any] = field(default_factory=dict)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    source: str = "enrolment"
    image_sha256: str = ""
    image_phash: str = ""

    @property
    def kind(self) -> tuple[str, str]:
        """(embedder, model SHA-256): templates compare only with the same kind."""
        return (self.embedder, self.model_sha256)

    def hashes(self) -> list[str]:
        """The source photo's tagged replay hashes (see :mod:`verification.replay`)."""
        out = []
        if self.image_sha256:
            out.append(f"sha256:{self.image_sha256}")
        if self.image_phash:
            out.append(f"phash:{self.image_phash}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; :meth:`from_dict` restores an equal template."""
        vec = np.asarray(self.vector, dtype="<f4").reshape(-1)
        return {
            "version": TEMPLATE_VERSION,
            "embedder": self.embedder,
            "model_sha256": self.model_sha256,
            "vector": base64.b64encode(vec.tobytes()).decode("ascii"),
            "quality": dict(self.quality),
            "created": self.created.astimezone(UTC).isoformat(),
            "source": self.source,
            "image_sha256": self.image_sha256,
            "image_phash": self.image_phash,
        }

    def to_bytes(self) -> bytes:
        """Compact UTF-8 JSON of :meth:`to_dict` (about 0.9 kB)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Template:
        """Restore a template; raises ``template_invalid`` for anything malformed."""
        try:
            if int(d.get("version", 0)) != TEMPLATE_VERSION:
                raise ValueError(f"unsupported template version {d.get('version')!r}")
            raw = base64.b64decode(d["vector"], validate=True)
            vec = np.frombuffer(raw, dtype="<f4").astype(np.float32)
            if vec.shape != (VECTOR_DIM,) or not np.all(np.isfinite(vec)):
                raise ValueError(f"vector must be {VECTOR_DIM} finite float32 values")
            created = datetime.fromisoformat(d["created"])
            if created.tzinfo is None:
                raise ValueError("created must be timezone-aware")
            source = str(d.get("source", "enrolment"))
            if source not in SOURCES:
                raise ValueError(f"unknown source {source!r}")
            return cls(
                embedder=str(d["embedder"]),
                model_sha256=str(d["model_sha256"]),
                vector=vec,
                quality=dict(d.get("quality") or {}),
                created=created,
                source=source,
                image_sha256=str(d.get("image_sha256", "")),
                image_phash=str(d.get("image_phash", "")),
            )
        except VerificationError:
            raise
        except (KeyError, TypeError, ValueError, binascii.Error, AttributeError) as exc:
            raise VerificationError("template_invalid", f"malformed template: {exc}") from exc

    @classmethod
    def from_bytes(cls, data: bytes) -> Template:
        """Restore from :meth:`to_bytes`; raises ``template_invalid``."""
        try:
            d = json.loads(data)
        except (ValueError, TypeError) as exc:
            raise VerificationError("template_invalid", f"not template JSON: {exc}") from exc
        if not isinstance(d, dict):
            raise VerificationError("template_invalid", "template JSON must be an object")
        return cls.from_dict(d)

    @classmethod
    def coerce(cls, value: Template | dict[str, Any] | bytes | str) -> Template:
        """A :class:`Template` from itself, its dict, or its bytes/JSON text."""
        if isinstance(value, Template):
            return value
        if isinstance(value, dict):
            return cls.from_dict(value)
        if isinstance(value, bytes | str):
            return cls.from_bytes(value.encode() if isinstance(value, str) else value)
        raise VerificationError("template_invalid", f"not a template: {type(value).__name__}")


def coerce_all(templates: Iterable[Template | dict[str, Any] | bytes | str]) -> list[Template]:
    """Templates from any mix of stored forms; ``no_templates`` when empty."""
    if isinstance(templates, Template | dict | bytes | str):
        templates = [templates]  # a single template passed by mistake still works
    out = [Template.coerce(t) for t in templates]
    if not out:
        raise VerificationError("no_templates", "no enrolled template to compare with")
    return out


def add_template(
    templates: Sequence[Template], new: Template, *, max_templates: int
) -> list[Template]:
    """``templates`` plus ``new``, bounded to ``max_templates``.

    When full, the oldest non-enrolment template is evicted (enrolment templates always stay;
    if all kept ones are enrolment templates, ``new`` is not added).
    """
    kept = list(templates)
    if len(kept) < max_templates:
        return [*kept, new]
    evictable = [t for t in kept if t.source != "enrolment"]
    if not evictable:
        return kept
    oldest = min(evictable, key=lambda t: t.created)
    kept.remove(oldest)
    return [*kept, new]
