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

The less obvious defects (motion blur, partial blur, sensor noise, banding, a subject cut by
the frame, mild exposure errors) are measured in ``review.quality.defects``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from review.vocabulary import Reason, ReasonCode

from . import defects
from .images import load_image, to_rgb
from .subject import find_subject

__all__ = ["ScoreCard", "load_image", "score_image", "to_rgb"]

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
# A low-key frame (dark, but with real highlights: defects.LOW_KEY_HIGH) may be darker and
# crush more of its shadows before it counts as underexposed.
LOW_KEY_MEAN_BAD, LOW_KEY_MEAN_OK = 8.0, 30.0
LOW_KEY_CLIP_OK, LOW_KEY_CLIP_BAD = 0.30, 0.60

# Contrast: RMS contrast (std of luma, 0-255 scale) of the whole frame.
FLAT_STD = 8.0
CONTRASTY_STD = 40.0


# Artefacts. Blank: every channel nearly constant. Black: dark and nothing bright in it.
BLANK_STD = 3.0
BLACK_MEAN = 12.0
BLACK_P99 = 30
# Neighbouring pixels of any real picture are strongly correlated, even in fine texture;
# i.i.d. noise (a diverged sampler, a broken VAE) is not.
NOISE_CORRELATION = 0.25

# Partial blur caps the sharpness score here: below reject_below, so a human looks.
PARTIAL_BLUR_SCORE = 0.3

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
    # Where sharpness was measured, [x, y, w, h] in the image's pixels: the subject on a
    # plain backdrop, or the in-focus part of a shallow depth of field; None = whole frame.
    subject_box: list[int] | None = None
    # Content screening (review.quality.add_content): the detector's findings and what the
    # campaign's rules make of them: "" not screened here, "clear", "review", "reject", or
    # "unavailable" (the detector could not look: never approved automatically).
    detections: list[dict] = field(default_factory=list)
    screen: str = ""


def score_image(image: Image.Image) -> ScoreCard:
    """Score one image. Pure function of the pixels; safe to call from any worker."""
    if image.mode != "RGB":
        image = to_rgb(image)
    # One copy of the pixels (a PIL image hands out a new one on every np.asarray) and its
    # grey; the working copy and every native-resolution measure read these.
    native = np.asarray(image)
    native_grey = cv2.cvtColor(native, cv2.COLOR_RGB2GRAY)
    rgb = _working_copy(native)
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
        small = max(image.size) < WORK_SIZE
        correlation = _neighbour_correlation(native_grey if small else grey)
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
            scores=dict.fromkeys(SCORE_NAMES, 0.0),
            measures=measures,
            reasons=[failure],
            hard_fail=True,
        )

    found = find_subject(rgb, grey)
    body = found.body if found is not None else None
    outline = found.outline if found is not None else None
    measures["plain_backdrop"] = 1.0 if found is not None else 0.0
    if found is not None:
        measures["backdrop_luma"] = float(found.backdrop.astype(np.float32) @ _LUMA)
    measures["subject_fraction"] = (
        cv2.countNonZero(outline) / outline.size if outline is not None else 1.0
    )

    reasons: list[Reason] = []
    sharpness, region = _sharpness(grey, outline, measures, reasons)
    subject_box = _subject_box(body if body is not None else region, grey.shape, image.size)

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
    blockiness = _blockiness(native_grey, measures, reasons)
    saturation = _saturation(rgb, measures, reasons)
    noise = defects.noise_score(native_grey, measures, reasons)
    banding = defects.banding_score(native, measures, reasons)
    framing = defects.framing_score(body, measures, reasons)
    return ScoreCard(
        scores={
            "sharpness": sharpness,
            "exposure": exposure,
            "contrast": contrast,
            "blockiness": blockiness,
            "saturation": saturation,
            "noise": noise,
            "banding": banding,
            "framing": framing,
        },
        measures=measures,
        reasons=reasons,
        hard_fail=False,
        subject_box=subject_box,
    )


SCORE_NAMES = (
    "sharpness",
    "exposure",
    "contrast",
    "blockiness",
    "saturation",
    "noise",
    "banding",
    "framing",
)


def _subject_box(
    region: np.ndarray | tuple | None, work_shape: tuple[int, int], size: tuple[int, int]
) -> list[int] | None:
    """A mask's (or a box's) bounding box at the working size, in the image's own pixels."""
    if region is None:
        return None
    if isinstance(region, tuple):
        x, y, w, h = region
    else:
        points = cv2.findNonZero(region)
        if points is None:
            return None
        x, y, w, h = cv2.boundingRect(points)
    sx, sy = size[0] / work_shape[1], size[1] / work_shape[0]
    return [round(x * sx), round(y * sy), max(1, round(w * sx)), max(1, round(h * sy))]


def _working_copy(pixels: np.ndarray) -> np.ndarray:
    """RGB uint8 array with the longest side at WORK_SIZE."""
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


def _sharpness(
    grey: np.ndarray,
    subject: np.ndarray | None,
    measures: dict[str, float],
    reasons: list[Reason],
) -> tuple[float, tuple[int, int, int, int] | None]:
    """Sharpness score, and the in-focus box when a shallow depth of field was measured.

    On a plain backdrop: the subject's Laplacian variance. On a whole frame, a 4x4 focus map
    also tells a shallow depth of field (the centre in focus, the rest soft: measured on the
    in-focus tiles) from partial blur (the centre soft where the rest is sharp: capped, for a
    human to judge). Blur in one direction (motion) is the weakest directional energy.
    """
    laplacian = cv2.Laplacian(grey, cv2.CV_32F, ksize=1)
    if subject is None:
        _, std = cv2.meanStdDev(laplacian)
    else:
        _, std = cv2.meanStdDev(laplacian, mask=subject)
    variance = float(std[0, 0]) ** 2
    measures["laplacian_var"] = variance
    where, box, partial = ("subject" if subject is not None else "frame"), None, None
    focus = defects.focus_map(grey, laplacian, NEEDS_VAR) if subject is None else None
    if focus is not None:
        measures["focus_sharp_tiles"] = float(focus.sharp.sum())
        measures["focus_blurred_centre_tiles"] = float(focus.centre_blurred)
        if focus.centre_blurred >= 2 and focus.sharp.sum() >= 3:
            partial = focus
        elif variance < NEEDS_VAR and focus.shallow_depth_of_field(NEEDS_VAR):
            # Shallow depth of field: the subject is what is in focus.
            variance = focus.in_focus_var
            measures["in_focus_var"] = variance
            where, box = "in-focus part", focus.sharp_box(grey.shape)
    score = _log_score(variance, BLURRY_VAR, SHARP_VAR)
    if variance < NEEDS_VAR and partial is None:
        reasons.append(
            Reason(
                ReasonCode.BLUR,
                f"The {where} is blurry.",
                f"{where} sharpness (Laplacian variance) {variance:.1f}, needs {NEEDS_VAR:.0f}",
            )
        )
    elif partial is not None:
        score = min(score, PARTIAL_BLUR_SCORE)
        reasons.append(
            Reason(
                ReasonCode.BLUR,
                "Part of the frame is blurred: the centre is soft where the rest is sharp.",
                f"{partial.centre_blurred} of the 4 central tiles of a 4x4 grid keep under "
                f"{defects.PART_REL:.0%} of the fine detail the sharpest tiles have",
            )
        )
    balance = defects.directional_balance(grey, subject)
    measures["directional_balance"] = balance
    motion = defects.smoothstep(defects.MOTION_BAD, defects.MOTION_OK, balance)
    if motion < score:
        score = motion
        if motion < 0.5 and variance >= NEEDS_VAR:
            reasons.append(
                Reason(
                    ReasonCode.BLUR,
                    "Motion blur: the detail is smeared in one direction.",
                    f"weakest / strongest directional detail {balance:.2f}, sharp photos "
                    f"have at least {defects.MOTION_OK:.2f}",
                )
            )
    return score, box


def _exposure(
    grey: np.ndarray,
    hist: np.ndarray,
    subject: np.ndarray | None,
    measures: dict[str, float],
    reasons: list[Reason],
) -> float:
    mean_bad_low, mean_ok_low = MEAN_BAD_LOW, MEAN_OK_LOW
    low_ok, low_bad = CLIP_OK, CLIP_BAD
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
    p1, p99 = defects.tone_range(region_hist)
    measures["clipped_high"] = clipped_high
    measures["clipped_low"] = clipped_low
    measures["region_mean_luma"] = region_mean
    measures["luma_p1"], measures["luma_p99"] = p1, p99

    dull = lifted = 0.0
    if subject is None:
        if p99 >= defects.LOW_KEY_HIGH:
            # Low-key: dark on purpose, the highlights are there.
            mean_bad_low, mean_ok_low = LOW_KEY_MEAN_BAD, LOW_KEY_MEAN_OK
            low_ok, low_bad = LOW_KEY_CLIP_OK, LOW_KEY_CLIP_BAD
        dull = defects.dull_highlights(p99, region_mean)
        lifted = defects.lifted_blacks(p1, region_mean)
    high = 1.0 - _smoothstep(CLIP_OK, CLIP_BAD, clipped_high)
    low = 1.0 - _smoothstep(low_ok, low_bad, clipped_low)
    if region_mean < mean_ok_low:
        level = _smoothstep(mean_bad_low, mean_ok_low, region_mean)
    else:
        level = 1.0 - _smoothstep(MEAN_OK_HIGH, MEAN_BAD_HIGH, region_mean)
    if 1.0 - dull < 0.5 and level >= 0.5 and low >= 0.5:
        reasons.append(
            Reason(
                ReasonCode.EXPOSURE,
                "Underexposed: the frame is dim and has no highlights.",
                f"99% of the frame below luma {p99:.0f} (a good exposure reaches "
                f"{defects.OK_HIGH:.0f}), mean {region_mean:.0f}",
            )
        )
    if 1.0 - lifted < 0.5 and level >= 0.5 and high >= 0.5:
        reasons.append(
            Reason(
                ReasonCode.EXPOSURE,
                "Overexposed: the frame is bright and its blacks are lifted to grey.",
                f"1% of the frame below luma {p1:.0f} (deep tones reach "
                f"{defects.OK_LOW:.0f}), mean {region_mean:.0f}",
            )
        )
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
    return min(high, low, level, 1.0 - dull, 1.0 - lifted)


def _blockiness(grey: np.ndarray, measures: dict[str, float], reasons: list[Reason]) -> float:
    """Share of 8x8 block boundaries in smooth areas that show a seam (on the native grey);
    1 = no blocking."""
    seams = smooth = 0
    # Every other line is enough for a fraction and halves the cost at 1024².
    for lines in (grey[::2], grey.T[::2]):
        n = (lines.shape[1] - 1) // 8
        if n == 0:
            continue
        diff = cv2.absdiff(lines[:, 1 : n * 8 + 1], lines[:, : n * 8])
        # Per 8-pixel block: the sum of all eight steps (cv2.reduce, far faster than a numpy
        # mean over a short axis), less the boundary step, over the seven inner ones.
        total = cv2.reduce(diff.reshape(-1, 8), 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S)
        boundary = diff.reshape(-1, n, 8)[:, :, 7].astype(np.float32)
        inner = (total.reshape(-1, n) - boundary) / np.float32(7)
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
