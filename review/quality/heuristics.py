"""Cheap, model-free image scores: sharpness, exposure, contrast, JPEG blockiness, extreme
saturation, and blank/black/noise frames.

Everything runs on one reduced copy of the frame (longest side ``WORK_SIZE``) so a 1024² image
costs a few milliseconds and scores are comparable across output sizes: the Laplacian's
response depends on the pixel scale, so a 2048² render and its 512² preview must be measured
at the same scale to get the same verdict.

Product shots on a plain studio backdrop are the common case in this pipeline, so sharpness
and clipping are measured on the *subject*: the backdrop colour is estimated from the border,
and the pixels that differ from it (plus strong edges) are the subject. A sharp sneaker on
pure white must not be called blurry because 80% of the frame is flat, nor overexposed
because the backdrop is 255.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from typing import IO

import cv2
import numpy as np
from PIL import Image

from review.vocabulary import Reason, ReasonCode

WORK_SIZE = 512

# Sharpness: variance of the 3x3 Laplacian on the subject at WORK_SIZE. The score is the
# log-scaled position between the two references, smoothed, so it neither saturates early
# nor jumps. Calibrated on synthetic scenes and a few real photos: in-focus photos measured
# 380-1600; a Gaussian blur of sigma 1 px at the working size halves the score, 2 px takes
# it to about 0 (synthetic scene at 1024²: sigma 3 px -> 71, 4 px -> 12, 8 px -> 2).
BLURRY_VAR = 20.0
SHARP_VAR = 400.0
# The variance at which the score is 0.5 (the geometric midpoint); below it we say "blurry".
NEEDS_VAR = math.sqrt(BLURRY_VAR * SHARP_VAR)

# Exposure: luma at/above 250 or at/below 5 counts as clipped.
CLIP_HIGH = 250
CLIP_LOW = 5
# Clipped fraction of the measured region: harmless up to CLIP_OK, score 0 at CLIP_BAD.
CLIP_OK = 0.03
CLIP_BAD = 0.30
# Mean luma: no penalty inside [MEAN_OK_LOW, MEAN_OK_HIGH], score 0 at the outer limits.
MEAN_BAD_LOW, MEAN_OK_LOW, MEAN_OK_HIGH, MEAN_BAD_HIGH = 20.0, 70.0, 190.0, 235.0

# Contrast: RMS contrast (std of luma, 0-255 scale) of the whole frame.
FLAT_STD = 8.0
CONTRASTY_STD = 40.0

# Background detection: a border pixel within BG_TOLERANCE (max over RGB channels) of the
# border's median colour is "backdrop"; the backdrop counts as plain when at least
# BG_PLAIN_FRACTION of the border is. 0.8 leaves room for a subject that touches one edge.
BG_TOLERANCE = 12
BG_PLAIN_FRACTION = 0.8
# A pixel is subject when it differs from the backdrop by more than this (max over channels);
# above JPEG noise on a flat backdrop, below any real object's edge.
SUBJECT_TOLERANCE = 20
# Sobel gradient magnitude (|gx| + |gy|, 3x3) that also counts as subject: catches white or
# backdrop-coloured parts of a product by their outlines.
EDGE_THRESHOLD = 120
# Fewer subject pixels than this fraction is specks or compression noise, not a subject.
MIN_SUBJECT_FRACTION = 0.005

# Artefacts. Blank: every channel nearly constant. Black: dark and nothing bright in it.
BLANK_STD = 3.0
BLACK_MEAN = 12.0
BLACK_P99 = 30
# Neighbouring pixels of any real picture are strongly correlated, even in fine texture;
# i.i.d. noise (a diverged sampler, a broken VAE) is not.
NOISE_CORRELATION = 0.25

# Blockiness (heavy JPEG): measured at native resolution, where the 8x8 grid is. A block
# boundary in a smooth stretch (inner differences < BLOCK_SMOOTH) that steps by at least
# BLOCK_STEP more than its interior is a visible seam; real edges (>= BLOCK_EDGE) are not.
# PNG and quality-90 JPEG renders measured 0.00-0.20 seam fraction, quality 5-10 0.45-0.98.
BLOCK_SMOOTH = 2.0
BLOCK_STEP = 2.0
BLOCK_EDGE = 40
BLOCK_OK, BLOCK_BAD = 0.25, 0.60
# Too few smooth boundaries to judge (a busy texture, a thumbnail): no verdict on blockiness.
BLOCK_MIN_SMOOTH = 0.01
BLOCK_MIN_SMOOTH_COUNT = 256

# Extreme saturation: pixels with HSV saturation >= SAT_HIGH (of 255) that are not dark.
# Busy synthetic scenes with random colours measured 0.10-0.14, a 4x saturation boost 0.75.
SAT_HIGH = 230
SAT_MIN_VALUE = 60
SAT_OK, SAT_BAD = 0.30, 0.60

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass
class ScoreCard:
    """Scores in [0, 1] (1 = good), the raw measurements behind them, and why they are low."""

    scores: dict[str, float]
    measures: dict[str, float]
    reasons: list[Reason] = field(default_factory=list)
    hard_fail: bool = False


def load_image(path: str | os.PathLike[str] | IO[bytes]) -> Image.Image:
    """Open an image file (a path or a binary file object) safely; return it loaded, as RGB.

    Only PNG, JPEG and WEBP are parsed (Pillow would otherwise try every decoder it has on
    untrusted bytes), and a decompression bomb is an error rather than a warning. Any failure
    is a ValueError whose message names the file.
    """
    name = getattr(path, "name", None) or path
    try:
        # catch_warnings is process-global, not thread-safe; the explicit size check below
        # refuses a bomb even when another thread has changed the filters meanwhile.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=["PNG", "JPEG", "WEBP"]) as image:
                limit = Image.MAX_IMAGE_PIXELS
                if limit is not None and image.width * image.height > limit:
                    raise Image.DecompressionBombError(
                        f"{image.width}x{image.height} pixels is more than {limit}"
                    )
                image.load()
                return to_rgb(image)
    except FileNotFoundError:
        raise ValueError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{name}: is a directory, not an image") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ValueError(f"{name}: image too large ({exc})") from None
    except Image.UnidentifiedImageError:
        raise ValueError(f"{name}: not a PNG, JPEG or WEBP image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Truncated or corrupt data surfaces as OSError (or SyntaxError from some plugins).
        raise ValueError(f"{name}: unreadable image ({exc})") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB copy of any mode; transparency is flattened onto white, as a cut-out is shown."""
    if image.mode == "RGB":
        return image.copy()
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")


def score_image(image: Image.Image) -> ScoreCard:
    """Score one image. Pure function of the pixels; safe to call from any worker."""
    if image.mode != "RGB":
        image = to_rgb(image)
    rgb = _working_copy(image)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    measures: dict[str, float] = {
        "width": float(image.width),
        "height": float(image.height),
    }

    hist = cv2.calcHist([grey], [0], None, [256], [0, 256]).ravel().astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    total = hist.sum()
    mean_luma = float((hist * levels).sum() / total)
    luma_std = float(math.sqrt(max((hist * (levels - mean_luma) ** 2).sum() / total, 0.0)))
    _, channel_std = cv2.meanStdDev(rgb)
    measures["mean_luma"] = mean_luma
    measures["luma_std"] = luma_std
    measures["max_channel_std"] = float(channel_std.max())

    failure = _blank_or_black(hist, mean_luma, float(channel_std.max()), rgb)
    if failure is None:
        # At native size when smaller than the working size: enlarging interpolates, and
        # interpolation makes even pure noise look correlated.
        native = max(image.size) < WORK_SIZE
        correlation = _neighbour_correlation(
            cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY) if native else grey
        )
        measures["neighbour_correlation"] = correlation
        if correlation < NOISE_CORRELATION:
            failure = Reason(
                ReasonCode.NOISE,
                "The image is pure noise, not a picture.",
                f"neighbouring pixels uncorrelated: r={correlation:.2f}, a real picture has "
                f"> {NOISE_CORRELATION}",
            )
    if failure is not None:
        # Nothing else about a blank or noise frame is meaningful; every score is 0.
        return ScoreCard(
            scores={
                "sharpness": 0.0,
                "exposure": 0.0,
                "contrast": 0.0,
                "blockiness": 0.0,
                "saturation": 0.0,
            },
            measures=measures,
            reasons=[failure],
            hard_fail=True,
        )

    found = _find_subject(rgb, grey)
    body = found.body if found is not None else None
    outline = found.outline if found is not None else None
    measures["plain_backdrop"] = 1.0 if found is not None else 0.0
    if found is not None:
        measures["backdrop_luma"] = float(found.backdrop.astype(np.float32) @ _LUMA)
    measures["subject_fraction"] = (
        cv2.countNonZero(outline) / outline.size if outline is not None else 1.0
    )

    reasons: list[Reason] = []
    sharpness, lap_var = _sharpness(grey, outline)
    measures["laplacian_var"] = lap_var
    if lap_var < NEEDS_VAR:
        where = "subject" if outline is not None else "frame"
        reasons.append(
            Reason(
                ReasonCode.BLUR,
                f"The {where} is blurry.",
                f"{where} sharpness (Laplacian variance) {lap_var:.1f}, needs {NEEDS_VAR:.0f}",
            )
        )

    exposure = _exposure(grey, hist, body, measures, reasons)
    contrast = _smoothstep(FLAT_STD, CONTRASTY_STD, luma_std)
    if contrast < 0.5:
        reasons.append(
            Reason(
                ReasonCode.CONTRAST,
                "The image looks flat: it has little contrast.",
                f"luma std {luma_std:.1f}, needs {(FLAT_STD + CONTRASTY_STD) / 2:.0f}",
            )
        )
    blockiness = _blockiness(image, measures, reasons)
    saturation = _saturation(rgb, measures, reasons)
    return ScoreCard(
        scores={
            "sharpness": sharpness,
            "exposure": exposure,
            "contrast": contrast,
            "blockiness": blockiness,
            "saturation": saturation,
        },
        measures=measures,
        reasons=reasons,
        hard_fail=False,
    )


def _working_copy(image: Image.Image) -> np.ndarray:
    """RGB uint8 array with the longest side at WORK_SIZE."""
    pixels = np.asarray(image)
    h, w = pixels.shape[:2]
    scale = WORK_SIZE / max(h, w)
    if scale == 1.0:
        return np.ascontiguousarray(pixels)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # INTER_AREA averages when shrinking (no aliasing that would fake sharpness); smaller
    # images are enlarged so they are judged as they would look at the common size.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(pixels, size, interpolation=interpolation)


def _blank_or_black(
    hist: np.ndarray, mean_luma: float, max_channel_std: float, rgb: np.ndarray
) -> Reason | None:
    cumulative = np.cumsum(hist) / hist.sum()
    p99 = int(np.searchsorted(cumulative, 0.99))
    if mean_luma < BLACK_MEAN and p99 < BLACK_P99:
        return Reason(
            ReasonCode.BLANK,
            "The image is black.",
            f"mean luma {mean_luma:.1f}, 99% of pixels below {p99 + 1}",
        )
    if max_channel_std < BLANK_STD:
        colour = tuple(int(round(c)) for c in cv2.mean(rgb)[:3])
        return Reason(
            ReasonCode.BLANK,
            f"The image is blank: one colour {colour} and nothing else.",
            f"channel std {max_channel_std:.1f}",
        )
    return None


def _neighbour_correlation(grey: np.ndarray) -> float:
    """The stronger of the horizontal and vertical neighbour correlations, in absolute value
    (a one-pixel stripe pattern is perfectly anti-correlated across and correlated along)."""
    pixels = grey.astype(np.float32)
    pixels -= float(pixels.mean())
    best = 0.0
    for a, b in ((pixels[:, :-1], pixels[:, 1:]), (pixels[:-1], pixels[1:])):
        if a.size == 0:
            continue
        denominator = math.sqrt(float(np.vdot(a, a)) * float(np.vdot(b, b)))
        if denominator > 0:
            best = max(best, abs(float(np.vdot(a, b))) / denominator)
    # A frame without variation is caught as blank before this; call it correlated.
    return best if best > 0 else 1.0


@dataclass
class _Subject:
    """Where the subject is, on a plain backdrop."""

    backdrop: np.ndarray  # RGB colour of the backdrop
    body: np.ndarray | None  # uint8 mask: pixels that differ from the backdrop colour
    outline: np.ndarray | None  # body plus strong edges, for measuring sharpness


def _find_subject(rgb: np.ndarray, grey: np.ndarray) -> _Subject | None:
    """The subject on a plain backdrop; None when the border is not a plain backdrop, in
    which case callers measure the whole frame."""
    h, w = grey.shape
    strip = max(2, min(h, w) // 50)
    # N x 1 x 3 so OpenCV treats it as a one-column 3-channel image.
    border = np.concatenate(
        [
            rgb[:strip].reshape(-1, 1, 3),
            rgb[-strip:].reshape(-1, 1, 3),
            rgb[:, :strip].reshape(-1, 1, 3),
            rgb[:, -strip:].reshape(-1, 1, 3),
        ]
    )
    backdrop = np.median(border, axis=(0, 1)).astype(np.uint8)
    if np.count_nonzero(_near(border, backdrop, BG_TOLERANCE)) < BG_PLAIN_FRACTION * len(border):
        return None

    body = cv2.bitwise_not(_near(rgb, backdrop, SUBJECT_TOLERANCE))
    if cv2.countNonZero(body) < MIN_SUBJECT_FRACTION * body.size:
        # Specks on a backdrop: no distinct subject.
        return _Subject(backdrop=backdrop, body=None, outline=None)
    gx = cv2.convertScaleAbs(cv2.Sobel(grey, cv2.CV_16S, 1, 0, ksize=3))
    gy = cv2.convertScaleAbs(cv2.Sobel(grey, cv2.CV_16S, 0, 1, ksize=3))
    _, edges = cv2.threshold(cv2.add(gx, gy), EDGE_THRESHOLD, 255, cv2.THRESH_BINARY)
    # Dilate so the subject's outline against the backdrop, usually its strongest edge, is
    # inside the measured region.
    outline = cv2.dilate(cv2.bitwise_or(body, edges), np.ones((7, 7), np.uint8))
    return _Subject(backdrop=backdrop, body=body, outline=outline)


def _near(pixels: np.ndarray, colour: np.ndarray, tolerance: int) -> np.ndarray:
    """255 where every channel is within tolerance of colour (a box in RGB), else 0."""
    low = np.clip(colour.astype(np.int16) - tolerance, 0, 255).astype(np.uint8)
    high = np.clip(colour.astype(np.int16) + tolerance, 0, 255).astype(np.uint8)
    return cv2.inRange(pixels, low, high)


def _sharpness(grey: np.ndarray, subject: np.ndarray | None) -> tuple[float, float]:
    laplacian = cv2.Laplacian(grey, cv2.CV_32F, ksize=1)
    if subject is None:
        _, std = cv2.meanStdDev(laplacian)
    else:
        _, std = cv2.meanStdDev(laplacian, mask=subject)
    variance = float(std[0, 0]) ** 2
    return _log_score(variance, BLURRY_VAR, SHARP_VAR), variance


def _exposure(
    grey: np.ndarray,
    hist: np.ndarray,
    subject: np.ndarray | None,
    measures: dict[str, float],
    reasons: list[Reason],
) -> float:
    if subject is not None:
        # The backdrop is excluded: a 255 studio white is intended, not blown highlights.
        # The price: on white, a blown-out white part of the product looks like backdrop
        # too, so there only the subject's mean luma can catch overexposure.
        region_hist = cv2.calcHist([grey], [0], subject, [256], [0, 256]).ravel()
        where = "subject"
    else:
        region_hist = hist
        where = "frame"
    n = max(region_hist.sum(), 1.0)
    clipped_high = float(region_hist[CLIP_HIGH:].sum() / n)
    clipped_low = float(region_hist[: CLIP_LOW + 1].sum() / n)
    region_mean = float((region_hist * np.arange(256)).sum() / n)
    measures["clipped_high"] = clipped_high
    measures["clipped_low"] = clipped_low
    measures["region_mean_luma"] = region_mean

    high = 1.0 - _smoothstep(CLIP_OK, CLIP_BAD, clipped_high)
    low = 1.0 - _smoothstep(CLIP_OK, CLIP_BAD, clipped_low)
    if region_mean < MEAN_OK_LOW:
        level = _smoothstep(MEAN_BAD_LOW, MEAN_OK_LOW, region_mean)
    else:
        level = 1.0 - _smoothstep(MEAN_OK_HIGH, MEAN_BAD_HIGH, region_mean)
    if high < 0.5:
        reasons.append(
            Reason(
                ReasonCode.EXPOSURE,
                f"Overexposed: part of the {where} is blown out to white.",
                f"{clipped_high:.0%} of the {where} at luma >= {CLIP_HIGH}",
            )
        )
    if low < 0.5:
        reasons.append(
            Reason(
                ReasonCode.EXPOSURE,
                f"Underexposed: part of the {where} is crushed to black.",
                f"{clipped_low:.0%} of the {where} at luma <= {CLIP_LOW}",
            )
        )
    if level < 0.5:
        tone = "too dark" if region_mean < MEAN_OK_LOW else "too bright"
        reasons.append(
            Reason(
                ReasonCode.EXPOSURE,
                f"The {where} is {tone}.",
                f"mean luma of the {where} {region_mean:.0f}, comfortable "
                f"{MEAN_OK_LOW:.0f}-{MEAN_OK_HIGH:.0f}",
            )
        )
    return min(high, low, level)


def _blockiness(image: Image.Image, measures: dict[str, float], reasons: list[Reason]) -> float:
    """Share of 8x8 block boundaries in smooth areas that show a seam; 1 = no blocking."""
    grey = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY)
    seams = smooth = 0
    # Every other line is enough for a fraction and halves the cost at 1024².
    for lines in (grey[::2], grey.T[::2]):
        n = (lines.shape[1] - 1) // 8
        if n == 0:
            continue
        diff = cv2.absdiff(lines[:, 1 : n * 8 + 1], lines[:, : n * 8]).reshape(-1, n, 8)
        boundary = diff[:, :, 7].astype(np.float32)
        inner = diff[:, :, :7].mean(axis=2, dtype=np.float32)
        flat = (inner < BLOCK_SMOOTH) & (boundary < BLOCK_EDGE) & ((inner > 0) | (boundary > 0))
        smooth += int(np.count_nonzero(flat))
        seams += int(np.count_nonzero(flat & (boundary >= inner + BLOCK_STEP)))
    positions = grey.size / 8
    enough = smooth >= max(BLOCK_MIN_SMOOTH * positions, BLOCK_MIN_SMOOTH_COUNT)
    fraction = seams / smooth if enough else 0.0
    measures["block_seam_fraction"] = fraction
    score = 1.0 - _smoothstep(BLOCK_OK, BLOCK_BAD, fraction)
    if score < 0.5:
        reasons.append(
            Reason(
                ReasonCode.ARTEFACTS,
                "Compression blocks are visible (heavy JPEG).",
                f"{fraction:.0%} of 8x8 block edges in smooth areas show seams, fine below "
                f"{BLOCK_OK:.0%}",
            )
        )
    return score


def _saturation(rgb: np.ndarray, measures: dict[str, float], reasons: list[Reason]) -> float:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    vivid = cv2.inRange(hsv, (0, SAT_HIGH, SAT_MIN_VALUE), (180, 255, 255))
    fraction = cv2.countNonZero(vivid) / vivid.size
    measures["saturated_fraction"] = fraction
    score = 1.0 - _smoothstep(SAT_OK, SAT_BAD, fraction)
    if score < 0.5:
        reasons.append(
            Reason(
                ReasonCode.ARTEFACTS,
                "The colours are oversaturated.",
                f"{fraction:.0%} of the frame at extreme saturation, fine below {SAT_OK:.0%}",
            )
        )
    return score


def _smoothstep(edge0: float, edge1: float, x: float) -> float:
    t = min(max((x - edge0) / (edge1 - edge0), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def _log_score(value: float, low: float, high: float) -> float:
    if value <= low:
        return 0.0
    return _smoothstep(math.log(low), math.log(high), math.log(value))
