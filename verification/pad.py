"""Presentation-attack detection (PAD): is a real face in front of the camera, or a photo of one?

A printed photo of the enrolled person, or their photo or video on a phone or tablet held up to
the camera, matches their templates as well as they do themselves (97 % of real attack
recordings were auto-accepted by face matching alone). This stage gives every selfie and every
enrolment photo a score, P(live) in 0-1, from

- a passive classifier, MiniFASNetV2-SE (``minifasnetv2se_128.onnx``; a deployment supplies the
  file, :data:`PAD_MODEL_SHA256` is enforced, ``ISOCHECK_PAD_MODEL_PATH`` points at it), and
- cues of our own measured on the face and the scene around it: the colour texture of the face
  and of two wider crops that hold the edge of a sheet or screen (uniform LBP histograms in
  YCrCb and HSV), the frequency spectrum of the face (a re-photographed print or screen loses
  fine detail and gains moiré peaks), colour statistics (paper and screens narrow the chroma
  range), specular glare, and how sharp the face is against its background,

fused by a logistic regression whose coefficients are fitted by ``bench/pad_fit.py`` on
``../shared/spoof`` and the ordinary photo sets, subject-disjoint, and kept in
:class:`verification.settings.VerificationSettings` (``pad_weights``) with their measurement.

The result is a signal that can be wrong: a likely attack is never an automatic match, it goes to
a person (``presentation_suspected``); PAD alone never fails a check-in. Without the model file the
stage is ``off`` and says so (``state``), never silently.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from verification.errors import VerificationError
from verification.face_models import Face, read_model

PAD_MODEL_FILE = "minifasnetv2se_128.onnx"
PAD_MODEL_SHA256 = "af2381b88f38769222ed93379e12444e2a50814575de1c46170de570c55a42b6"
PAD_INPUT = 128
PAD_CROP_SCALE = 1.5
#: Faces larger than this (px, longer box side) are scored on a copy of the photo's region around
#: them (:func:`working_copy`) downscaled so the face is this size: every crop is then small (the
#: largest, 2.5 x, is 640 px) and a phone's 1080 px selfie costs what a webcam frame does. The
#: fitted photos' faces are 108-324 px (95th percentile), so the cues see what they were fitted on.
PAD_FACE_MAX = 256

#: The cue names, in the order of the fitted weights (after the intercept).
CUE_NAMES: tuple[str, ...] = (
    "model_logit",
    "hf_energy",
    "spectral_peak",
    "chroma_std",
    "saturation_mean",
    "specular",
    "face_bg_sharpness",
)

PadState = Literal["on", "off", "model_invalid"]


@dataclass(frozen=True)
class PadResult:
    """The PAD stage's verdict on one photo.

    ``state``: ``on`` (scored), ``off`` (no model file configured or found) or ``model_invalid``
    (a file whose SHA-256 differs). ``score``: calibrated P(live) 0-1, ``None`` unless ``on``.
    ``cues``: cue -> raw value (see :data:`CUE_NAMES`). ``code``: ``pad_live``,
    ``presentation_suspected`` (score below ``pad_review_below``), or ``pad_off``.
    """

    state: PadState
    score: float | None = None
    threshold: float | None = None
    code: str = "pad_off"
    cues: dict[str, float] = field(default_factory=dict)
    ms: float = 0.0
    reason: str | None = None

    @property
    def suspected(self) -> bool:
        return self.code == "presentation_suspected"

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "score": None if self.score is None else round(self.score, 4),
            "threshold": self.threshold,
            "code": self.code,
            "cues": {k: round(v, 4) for k, v in self.cues.items()},
            "ms": round(self.ms, 2),
            **({"reason": self.reason} if self.reason else {}),
        }


def square_crop(bgr: np.ndarray, box: Sequence[float], scale: float, side: int) -> np.ndarray:
    """A ``side``-px square crop centred on ``box`` (x, y, w, h), ``scale`` x its longer side,
    edges filled by reflection (the model's training crop)."""
    return _resized(_square_cut(bgr, box, scale), side)


def _square_cut(bgr: np.ndarray, box: Sequence[float], scale: float) -> np.ndarray:
    """The square of :func:`square_crop` at full resolution, before its resize to ``side``.

    Only the part of the image the crop and its reflection draw from is copied and padded (the
    same pixels as padding the whole image: a 2.5 x crop of a big face on a 1080 px photo used to
    copy several megapixels)."""
    x, y, w, h = (float(v) for v in box)
    half = scale * max(w, h) / 2
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    x1, y1 = int(round(cx + half)), int(round(cy + half))
    H, W = bgr.shape[:2]
    pl, pt, pr, pb = max(0, -x0), max(0, -y0), max(0, x1 - W), max(0, y1 - H)
    if pl or pt or pr or pb:
        # BORDER_REFLECT_101 maps -k -> k and (W - 1) + k -> (W - 1) - k: the sub-image must hold
        # those columns (rows) too, and it touches the image's edge wherever it is padded.
        sx0 = max(0, min(x0, W - 1 - pr) if pr else x0)
        sx1 = min(W, max(x1, pl + 1) if pl else x1)
        sy0 = max(0, min(y0, H - 1 - pb) if pb else y0)
        sy1 = min(H, max(y1, pt + 1) if pt else y1)
        sub = bgr[sy0:sy1, sx0:sx1]
        if max(pl, pr) >= sub.shape[1] or max(pt, pb) >= sub.shape[0]:
            sub, sx0, sy0 = bgr, 0, 0  # a crop wider than twice the image: reflect the whole
            pl, pt, pr, pb = max(0, -x0), max(0, -y0), max(0, x1 - W), max(0, y1 - H)
        else:
            pr = max(0, x1 - (sx0 + sub.shape[1])) if pr else 0
            pb = max(0, y1 - (sy0 + sub.shape[0])) if pb else 0
        src = cv2.copyMakeBorder(sub, pt, pb, pl, pr, cv2.BORDER_REFLECT_101)
        crop = src[y0 - sy0 + pt : y1 - sy0 + pt, x0 - sx0 + pl : x1 - sx0 + pl]
    else:
        crop = bgr[y0:y1, x0:x1]
    return crop


def _resized(crop: np.ndarray, side: int) -> np.ndarray:
    interp = cv2.INTER_AREA if crop.shape[0] > side else cv2.INTER_LINEAR
    return cv2.resize(crop, (side, side), interpolation=interp)


class Crops:
    """The :func:`square_crop` squares of one photo and box: each scale's square cut (and
    reflected) once, then resized to every side asked. The cues take the 1.0, 1.5 and 2.5 x
    squares twice each (on a phone selfie the 2.5 x one is a reflected ~640 px square); this
    gives the very pixels of calling :func:`square_crop` each time."""

    def __init__(self, bgr: np.ndarray, box: Sequence[float]) -> None:
        self.bgr, self.box = bgr, box
        self._cut: dict[float, np.ndarray] = {}

    def __call__(self, scale: float, side: int) -> np.ndarray:
        cut = self._cut.get(scale)
        if cut is None:
            cut = self._cut[scale] = _square_cut(self.bgr, self.box, scale)
        return _resized(cut, side)


#: The widest crop any cue takes, x the face box (the 2.5 x scene crops of the colour texture
#: and of the sharpness cue): the working copy needs only the photo's region under it.
PAD_REGION_SCALE = 2.5


def _region(lo: float, hi: float, n: int, margin: float) -> tuple[int, int]:
    """[a, b) of 0..n holding [lo, hi] widened by ``margin`` and the pixels its reflection at the
    image's edge mirrors (BORDER_REFLECT_101: -k -> k, (n - 1) + k -> (n - 1) - k)."""
    a, b = int(np.floor(lo - margin)), int(np.ceil(hi + margin))
    ra, rb = a, b
    if a < 0:
        rb = max(rb, 1 - a)
    if b > n:
        ra = min(ra, 2 * n - 1 - b)
    return max(0, ra), min(n, rb)


def working_copy(bgr: np.ndarray, face: Face) -> tuple[np.ndarray, Face]:
    """The part of ``bgr`` every cue's crop draws from (the :data:`PAD_REGION_SCALE` square
    around the face, clipped to the photo, plus what its reflection at the photo's edges
    mirrors), and ``face`` in its coordinates, downscaled (INTER_AREA) so the face's longer side
    is at most :data:`PAD_FACE_MAX` px; ``bgr`` and ``face`` unchanged when it already is.

    Two things keep a phone selfie cheap (resizing a whole 1080 px photo by a fractional factor
    was ~5 ms of PAD's 16): only that region is resized, and a face of 2 x PAD_FACE_MAX px or
    more is first block-averaged by the whole factor n = side // PAD_FACE_MAX (INTER_AREA's
    integer fast path, on a region aligned to n) and then by the fractional rest, as before. Not
    bit-identical to one resize of the whole photo where either applies (the region's own grid, a
    sub-pixel shift; two area averages instead of one): ``bench/pad_region_delta.py`` measures
    P(live) old vs new. Faces of 257-511 px whose region is the whole photo get the very copy of
    before."""
    side = max(face.box[2], face.box[3])
    k = PAD_FACE_MAX / side
    if k >= 1.0:
        return bgr, face
    n = max(1, int(side // PAD_FACE_MAX))
    x, y, w, h = (float(v) for v in face.box)
    half = PAD_REGION_SCALE * side / 2
    cx, cy = x + w / 2, y + h / 2
    # the crops are rounded to whole pixels of the small copy, and INTER_AREA's last cell may be
    # cut: 2 small pixels of margin keep every crop inside the region, away from a cut edge (a
    # safety: no random placement of tests/verification/test_pad.py needs it; 1 pixel too few
    # and nearly all of them fail)
    margin = 2.0 / k + 1.0
    H, W = bgr.shape[:2]
    sx0, sx1 = _aligned(*_region(cx - half, cx + half, W, margin), W, n)
    sy0, sy1 = _aligned(*_region(cy - half, cy + half, H, margin), H, n)
    sub = bgr[sy0:sy1, sx0:sx1]
    if n > 1:
        # n x n block means (exact integer factor: OpenCV's fast area path), then the rest
        sub = cv2.resize(sub, ((sx1 - sx0) // n, (sy1 - sy0) // n), interpolation=cv2.INTER_AREA)
    # sized as the whole photo's copy was (round(side x k)): when the region is the whole photo
    # and n = 1 the copy is the very same, bit for bit
    sh, sw = sub.shape[:2]
    kr = k * n
    small = cv2.resize(
        sub, (max(1, round(sw * kr)), max(1, round(sh * kr))), interpolation=cv2.INTER_AREA
    )
    box = ((x - sx0) * k, (y - sy0) * k, w * k, h * k)
    marks = (face.landmarks - np.array([sx0, sy0], np.float32)) * k
    return small, Face(box=box, landmarks=marks.astype(np.float32), score=face.score)


def _aligned(a: int, b: int, n_px: int, n: int) -> tuple[int, int]:
    """[a, b) widened to start on a multiple of ``n`` and span a multiple of ``n`` (cut short by
    fewer than ``n`` px at the image's end when it cannot be widened)."""
    if n == 1:
        return a, b
    a -= a % n
    span = -(-(b - a) // n) * n
    if a + span > n_px:
        span = (n_px - a) // n * n
    return a, a + span


class PadModel:
    """MiniFASNetV2-SE, built from checksummed bytes, on OpenVINO (``engine="openvino"``,
    :mod:`verification.inference`) or OpenCV's DNN module (``"opencv"``); same blob either way."""

    def __init__(self, model: bytes, *, engine: str = "opencv", threads: int = 1) -> None:
        self.engine = engine
        if engine == "openvino":
            from verification.inference import OpenVinoNet

            self._ov: Any = OpenVinoNet(
                model, threads=threads, input_shape=(1, 3, PAD_INPUT, PAD_INPUT)
            )
        else:
            self._ov = None
            self._net = cv2.dnn.readNetFromONNX(np.frombuffer(model, np.uint8))

    def logit(
        self, bgr: np.ndarray, face: Face, scale: float = PAD_CROP_SCALE, crops: Crops | None = None
    ) -> float:
        """log P(real)/P(spoof) for the face in ``bgr``, from a crop ``scale`` x the face box
        (``crops``: the photo's :class:`Crops`, when the caller has them)."""
        crop = (crops or Crops(bgr, face.box))(scale, PAD_INPUT)
        blob = cv2.dnn.blobFromImage(crop, 1 / 255.0, (PAD_INPUT, PAD_INPUT), swapRB=True)
        if self._ov is not None:
            out = self._ov.run(blob).reshape(-1)
        else:
            self._net.setInput(blob)
            out = self._net.forward().reshape(-1)
        return float(out[0] - out[1])


@functools.lru_cache(maxsize=4)
def _spectrum_masks(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(Hann window, radius > 0.02, 0.5 < radius <= 1, 0.35 < radius <= 1) for an h x w face
    chip (radius in units of half the side), computed once per size instead of every selfie."""
    window = np.outer(np.hanning(h), np.hanning(w))
    n = h
    yy, xx = np.mgrid[:n, :n] - n // 2
    r = np.sqrt(xx * xx + yy * yy) / (n / 2)
    return window, r > 0.02, (r > 0.5) & (r <= 1.0), (r > 0.35) & (r <= 1.0)


def _hf_cues(gray: np.ndarray) -> tuple[float, float]:
    """(share of spectral energy above half Nyquist, high-band peak over its median) of a face."""
    g = gray.astype(np.float32)
    window, dc_out, high, band_mask = _spectrum_masks(g.shape[0], g.shape[1])
    g = (g - g.mean()) * window
    mag = np.abs(np.fft.fftshift(np.fft.fft2(g)))
    power = mag**2
    total = float(power[dc_out].sum()) + 1e-9
    hf = float(power[high].sum()) / total
    band = mag[band_mask]
    peak = float(np.log((band.max() + 1e-6) / (np.median(band) + 1e-6)))
    return float(np.log(hf + 1e-9)), peak


def _uniform_lut() -> np.ndarray:
    """Uniform LBP(8,1): the 58 patterns with at most two 0/1 transitions get bins 0-57,
    the rest bin 58."""
    lut = np.full(256, 58, np.int64)
    nxt = 0
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        if sum(bits[i] != bits[(i + 1) % 8] for i in range(8)) <= 2:
            lut[code] = nxt
            nxt += 1
    return lut


_LUT = _uniform_lut()
_LBP_SHIFTS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))
LBP_BINS = 59
LBP_CHANNELS = ("Y", "Cr", "Cb", "H", "S", "V")
#: (crop scale x the face box, side in px) of the colour-texture crops: the face itself, the
#: model's 1.5 x crop, and a 2.5 x crop that holds the scene around the head (the frame of a
#: sheet, phone or tablet). Measured on ../shared/spoof (bench/pad_fit.py, out of fold): the face
#: crop alone fused to AUC 0.996 and let 18 % of Replay-Attack's live captures be flagged at a
#: 3 % attack pass rate; the three crops 0.999 and 1.7 %. Each costs ~0.7 ms.
TEXTURE_CROPS: tuple[tuple[float, int], ...] = ((1.0, 64), (1.5, 96), (2.5, 64))


def lbp_histogram(channel: np.ndarray) -> np.ndarray:
    """Normalised uniform LBP(8,1) histogram (59 bins) of one uint8 channel."""
    c = np.ascontiguousarray(channel, np.uint8)
    core = c[1:-1, 1:-1]
    code = np.zeros(core.shape, np.uint8)
    h, w = c.shape
    for bit, (dy, dx) in enumerate(_LBP_SHIFTS):
        nb = c[1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx]
        code |= np.greater_equal(nb, core).view(np.uint8) << np.uint8(bit)
    # 256 pattern counts, then summed into the 59 uniform bins (exact integer counts)
    counts = np.bincount(code.ravel(), minlength=256)
    hist = np.bincount(_LUT, weights=counts, minlength=LBP_BINS)
    return hist / hist.sum()


def colour_texture(bgr: np.ndarray, face: Face, crops: Crops | None = None) -> np.ndarray:
    """Colour-texture descriptor (uniform LBP histograms of the YCrCb and HSV channels, 6 x 59
    values per crop of :data:`TEXTURE_CROPS`; Boulkenafet et al., "Face spoofing detection using
    colour texture analysis", 2016): printing and screens change the chroma texture that a live
    face has, and the wider crops see the medium around it."""
    crops = crops or Crops(bgr, face.box)
    parts = []
    for scale, side in TEXTURE_CROPS:
        chip = crops(scale, side)
        ycc = cv2.cvtColor(chip, cv2.COLOR_BGR2YCrCb)
        hsv = cv2.cvtColor(chip, cv2.COLOR_BGR2HSV)
        chans = [ycc[..., 0], ycc[..., 1], ycc[..., 2], hsv[..., 0], hsv[..., 1], hsv[..., 2]]
        parts.extend(np.sqrt(lbp_histogram(ch)) for ch in chans)
    return np.concatenate(parts)


def image_cues(bgr: np.ndarray, face: Face, crops: Crops | None = None) -> dict[str, float]:
    """The hand-made cues of :data:`CUE_NAMES` (without the model's logit)."""
    crops = crops or Crops(bgr, face.box)
    chip = crops(1.0, 128)
    gray = cv2.cvtColor(chip, cv2.COLOR_BGR2GRAY)
    hf, peak = _hf_cues(gray)
    ycc = cv2.cvtColor(chip, cv2.COLOR_BGR2YCrCb).astype(np.float32)
    hsv = cv2.cvtColor(chip, cv2.COLOR_BGR2HSV).astype(np.float32)
    chroma_std = float(np.log(ycc[..., 1].std() + ycc[..., 2].std() + 1e-3))
    sat = float(hsv[..., 1].mean() / 255.0)
    spec = float(np.mean((hsv[..., 2] > 240) & (hsv[..., 1] < 40)))
    ctx = crops(2.5, 160)
    ctx_gray = cv2.cvtColor(ctx, cv2.COLOR_BGR2GRAY).astype(np.float32)
    lap = cv2.Laplacian(ctx_gray, cv2.CV_32F)
    inner = slice(int(160 * 0.3), int(160 * 0.7))
    face_var = float(lap[inner, inner].var()) + 1.0
    mask = np.ones_like(lap, bool)
    mask[inner, inner] = False
    bg_var = float(lap[mask].var()) + 1.0
    return {
        "hf_energy": hf,
        "spectral_peak": peak,
        "chroma_std": chroma_std,
        "saturation_mean": sat,
        "specular": float(np.log(spec + 1e-4)),
        "face_bg_sharpness": float(np.log(face_var / bg_var)),
    }


FUSION_FILE = Path(__file__).with_name("pad_fusion.json")


@dataclass(frozen=True)
class Fusion:
    """The fitted logistic regression: P(live) = sigmoid(intercept + coef . (x - mean) / scale)
    over the named cues then the colour-texture vector. Written by ``bench/pad_fit.py``."""

    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    threshold: float
    measured: dict[str, Any]

    @classmethod
    def load(cls, path: Path | None = None) -> Fusion:
        data = json.loads(Path(path or FUSION_FILE).read_text())
        if tuple(data["cues"]) != CUE_NAMES:
            raise ValueError(f"fusion file cues {data['cues']} differ from {CUE_NAMES}")
        width = len(CUE_NAMES) + len(TEXTURE_CROPS) * len(LBP_CHANNELS) * LBP_BINS
        if len(data["coef"]) != width:
            raise ValueError(f"fusion file has {len(data['coef'])} weights, the cues make {width}")
        return cls(
            intercept=float(data["intercept"]),
            mean=np.asarray(data["mean"], np.float64),
            scale=np.asarray(data["scale"], np.float64),
            coef=np.asarray(data["coef"], np.float64),
            threshold=float(data["threshold"]),
            measured=data.get("measured", {}),
        )

    def contributions(self, cues: dict[str, float], texture: np.ndarray) -> dict[str, float]:
        """Each named cue's term of the logit, plus ``colour_texture`` (the texture's sum)."""
        x = np.concatenate([[cues[c] for c in CUE_NAMES], texture])
        terms = self.coef * (x - self.mean) / self.scale
        n = len(CUE_NAMES)
        out = {c: float(terms[i]) for i, c in enumerate(CUE_NAMES)}
        out["colour_texture"] = float(terms[n:].sum())
        return out

    def score(self, cues: dict[str, float], texture: np.ndarray) -> float:
        z = self.intercept + sum(self.contributions(cues, texture).values())
        return float(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))))


class PresentationAttackDetector:
    """The PAD stage of :class:`verification.Verifier` (one per thread: DNN nets keep state).

    ``model``: the checksummed ONNX bytes, or ``None`` when the stage is off.
    """

    def __init__(
        self,
        model: bytes | None,
        *,
        fusion: Fusion,
        review_below: float | None = None,
        state: PadState = "on",
        reason: str | None = None,
        engine: str = "opencv",
        threads: int = 1,
    ) -> None:
        self.state: PadState = state if model is not None else ("off" if state == "on" else state)
        self.reason = reason
        self.fusion = fusion
        self.review_below = fusion.threshold if review_below is None else review_below
        self._model = PadModel(model, engine=engine, threads=threads) if model is not None else None

    def cues(self, bgr: np.ndarray, face: Face, crops: Crops | None = None) -> dict[str, float]:
        if self._model is None:
            raise RuntimeError("PAD is off")
        crops = crops or Crops(bgr, face.box)
        cues = {"model_logit": self._model.logit(bgr, face, crops=crops)}
        cues.update(image_cues(bgr, face, crops))
        return cues

    def features(self, bgr: np.ndarray, face: Face) -> tuple[dict[str, float], np.ndarray]:
        """(named cues, colour-texture vector) of the face (on a working copy where the face is at
        most :data:`PAD_FACE_MAX` px)."""
        bgr, face = working_copy(bgr, face)
        crops = Crops(bgr, face.box)  # each square cut once for all the cues
        return self.cues(bgr, face, crops), colour_texture(bgr, face, crops)

    def assess(self, bgr: np.ndarray, face: Face) -> PadResult:
        """Score the face ``face`` found in ``bgr`` (the decoded photo, BGR uint8)."""
        import time

        if self._model is None:
            return PadResult(state=self.state, reason=self.reason)
        t0 = time.perf_counter()
        cues, texture = self.features(bgr, face)
        score = self.fusion.score(cues, texture)
        cues = {
            **cues,
            "colour_texture": self.fusion.contributions(cues, texture)["colour_texture"],
        }
        code = "presentation_suspected" if score < self.review_below else "pad_live"
        return PadResult(
            state="on",
            score=score,
            threshold=self.review_below,
            code=code,
            cues=cues,
            ms=(time.perf_counter() - t0) * 1000,
        )


def load_pad_model(path: Path | None) -> tuple[bytes | None, PadState, str | None]:
    """(bytes, state, reason) for the model at ``path``: ``off`` without a path or file,
    ``model_invalid`` for a file whose SHA-256 differs (never a crash)."""
    if path is None:
        return None, "off", "ISOCHECK_PAD_MODEL_PATH is not set"
    if not Path(path).is_file():
        return None, "off", f"no PAD model file at {path}"
    try:
        return read_model(PAD_MODEL_FILE, PAD_MODEL_SHA256, Path(path)), "on", None
    except VerificationError as exc:
        return None, "model_invalid", str(exc)
