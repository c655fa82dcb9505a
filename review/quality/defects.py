"""The less obvious defects, measured for ``heuristics.score_image``: blur in one direction
(motion), blur on part of the frame versus a shallow depth of field, sensor noise over a
good photo, posterised banding, a subject cut by the frame, and mild over- or underexposure
versus an intentionally low-key photo.

Each function takes what score_image already has (the working copy, its grey, the native
pixels) and returns numbers; score_image turns them into scores and reasons. The limits were
set on scikit-image's sample photographs and the defective copies that tests/review builds
from them (tests/review/test_harder_defects.py); README.md says what is caught and what is not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from review.vocabulary import Reason, ReasonCode

# Motion blur: how evenly the fine detail's gradients point (directional_balance). Sharp
# photos measured 0.19 (brick: a wall of horizontal courses) to 0.95, the synthetic test
# scene 0.12; a 21-px streak at 512 px 0.01-0.07 along the axes and 0.06-0.32 at 45°.
MOTION_BAD, MOTION_OK = 0.05, 0.13

# Partial blur and depth of field, on a 4x4 grid of the working copy. A tile is in focus at
# the frame's "needs" sharpness. It is blurred when it is below that and its fine detail
# (Laplacian variance) per unit of coarse structure (gradient energy at a quarter of the size,
# which survives blur) is under PART_REL of the frame's best tiles (90th percentile): a clear
# sky has no structure and is flat, not blurred; a uniformly soft frame has no tile far
# softer than the others.
GRID = 4
PART_REL = 0.03
STRUCT_REL = 0.1
CENTRE = ((1, 1), (1, 2), (2, 1), (2, 2))

# A shallow depth of field is believed only when the in-focus tiles are clearly sharp
# (DOF_MIN times the "needs" sharpness) and the rest far softer (at most DOF_REST of them):
# a uniformly soft or smeared frame has a few tiles just over the line, not a sharp subject.
DOF_MIN = 2.0
DOF_REST = 0.25

# Sensor noise: Immerkaer's estimator (the response to a 3x3 kernel that cancels smooth
# gradients and edges to first order), averaged over 16x16 blocks; the 10th percentile block
# is a flat part of the picture, where only noise remains. Measured at native resolution on a
# centre crop: clean photos 0.0-0.8 (grass, all fine texture, 8.0); Gaussian noise of sigma 25
# over them 13-26.
NOISE_SIDE = 512
NOISE_BLOCK = 16
NOISE_OK, NOISE_BAD = 9.0, 16.0
NOISE_CLIPPED = 16
NOISE_MIN_BLOCKS = 8
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)

# Banding: how many of the levels between a channel's 0.5th and 99.5th percentile occur at
# all, at native resolution, in the best channel. Photos 0.88-1.0 (a black-and-white
# silhouette 0.50); posterised to 2-4 bits per channel 0.02-0.07.
BANDING_BAD, BANDING_OK = 0.08, 0.25
BANDING_MIN_RANGE = 32
BANDING_MIN_PIXELS = 4096
BANDING_SAMPLE = 250_000

# A subject on a plain backdrop that runs off the frame: the share of one edge's outermost
# line that is subject. A product shot keeps a margin; 3% allows a shadow's tail.
CUT_OK, CUT_BAD = 0.03, 0.12

# Tone range of a whole frame (not of a product on a backdrop: a black shoe on white has no
# highlights and is not underexposed). Highlights missing (99th percentile under
# DULL_HIGH..OK_HIGH) in a dim frame (mean under DIM_MEAN..OK_MEAN) is underexposure; blacks
# lifted (1st percentile over OK_LOW..LIFTED_LOW) in a bright frame (mean over
# BRIGHT_MEAN..GLARE_MEAN) is overexposure. Photos: 99th percentile 141-255, mean 61-171,
# 1st percentile 0-82.
DULL_HIGH, OK_HIGH = 110.0, 180.0
DIM_MEAN, OK_MEAN = 90.0, 130.0
OK_LOW, LIFTED_LOW = 25.0, 50.0
BRIGHT_MEAN, GLARE_MEAN = 140.0, 175.0
# Highlights at or above this make a dark frame low-key, not underexposed.
LOW_KEY_HIGH = 190.0


def smoothstep(edge0: float, edge1: float, x: float) -> float:
    t = min(max((x - edge0) / (edge1 - edge0), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def directional_balance(grey: np.ndarray, mask: np.ndarray | None) -> float:
    """How evenly the fine detail's gradients point every way: the smaller / larger
    eigenvalue of their structure tensor (on the frame minus a 2-px blur of it). Blur along
    one direction removes the gradients along it, whatever the angle; 1 = every way alike."""
    # Blurred as uint8 (OpenCV's fast path); the difference in int16, then float for Sobel.
    detail = cv2.subtract(grey, cv2.GaussianBlur(grey, (0, 0), 2.0), dtype=cv2.CV_16S)
    detail = detail.astype(np.float32)
    gx = cv2.Sobel(detail, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(detail, cv2.CV_32F, 0, 1, ksize=3)
    xx, yy, xy = (cv2.mean(p, mask=mask)[0] for p in (gx * gx, gy * gy, gx * gy))
    half_trace = (xx + yy) / 2
    spread = math.sqrt(max(half_trace * half_trace - (xx * yy - xy * xy), 0.0))
    larger = half_trace + spread
    return float((half_trace - spread) / larger) if larger > 1e-6 else 1.0


@dataclass
class FocusMap:
    """Where the frame is in focus, on a GRID x GRID grid."""

    variances: np.ndarray  # Laplacian variance per tile
    sharp: np.ndarray  # bool: at the frame's "needs" sharpness
    blurred: np.ndarray  # bool: structure there, but far softer than the sharpest tiles
    reference: float  # 90th percentile of the tiles' detail per unit of structure

    @property
    def centre_blurred(self) -> int:
        return sum(bool(self.blurred[i, j]) for i, j in CENTRE)

    @property
    def centre_sharp(self) -> int:
        return sum(bool(self.sharp[i, j]) for i, j in CENTRE)

    @property
    def in_focus_var(self) -> float:
        return float(self.variances[self.sharp].mean()) if self.sharp.any() else 0.0

    def shallow_depth_of_field(self, needs: float) -> bool:
        """A sharp subject in the centre, the rest far softer."""
        if self.sharp.sum() < 2 or self.centre_sharp < 1:
            return False
        rest = self.variances[~self.sharp]
        return self.in_focus_var >= DOF_MIN * needs and (
            rest.size == 0 or float(np.median(rest)) <= DOF_REST * self.in_focus_var
        )

    def sharp_box(self, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
        """Bounding box (x, y, w, h) of the in-focus tiles, in the grey's pixels."""
        rows, cols = np.nonzero(self.sharp)
        if len(rows) == 0:
            return None
        h, w = shape
        top, bottom = rows.min() * h // GRID, (rows.max() + 1) * h // GRID
        left, right = cols.min() * w // GRID, (cols.max() + 1) * w // GRID
        return int(left), int(top), int(right - left), int(bottom - top)


def focus_map(grey: np.ndarray, laplacian: np.ndarray, needs: float) -> FocusMap | None:
    """Per-tile sharpness of the whole frame; None for frames too small or thin to tile."""
    h, w = grey.shape
    if min(h, w) < 16 * GRID:
        return None
    th, tw = h // GRID, w // GRID
    variances = np.empty((GRID, GRID))
    for i in range(GRID):
        for j in range(GRID):
            _, std = cv2.meanStdDev(laplacian[i * th : (i + 1) * th, j * tw : (j + 1) * tw])
            variances[i, j] = float(std[0, 0]) ** 2
    small = cv2.pyrDown(cv2.pyrDown(grey))
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    energy = cv2.magnitude(gx, gy) ** 2
    sh, sw = energy.shape[0] // GRID, energy.shape[1] // GRID
    structure = (
        cv2.resize(
            np.ascontiguousarray(energy[: sh * GRID, : sw * GRID]),
            (GRID, GRID),
            interpolation=cv2.INTER_AREA,
        ).astype(np.float64)
        if sh and sw
        else np.ones((GRID, GRID))
    )
    # Fine detail per unit of coarse structure: blur lowers it, flat content does not.
    detail = variances / np.maximum(structure, 1e-6)
    reference = float(np.percentile(detail, 90))
    sharp = variances >= needs
    blurred = (
        (variances < needs)
        & (detail < PART_REL * reference)
        & (structure >= STRUCT_REL * float(np.median(structure)))
        & (structure > 0)
    )
    return FocusMap(variances=variances, sharp=sharp, blurred=blurred, reference=reference)


def sensor_noise(native_grey: np.ndarray) -> float:
    """Estimated standard deviation of the noise (0-255 scale) in flat parts of the picture."""
    h, w = native_grey.shape
    side = NOISE_SIDE
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    crop = native_grey[top : top + side, left : left + side]
    if min(crop.shape) < NOISE_BLOCK + 2:
        return 0.0
    response = cv2.absdiff(cv2.filter2D(crop, cv2.CV_32F, _IMMERKAER), 0.0)[1:-1, 1:-1]
    bh, bw = response.shape[0] // NOISE_BLOCK, response.shape[1] // NOISE_BLOCK

    def blocks_of(pixels: np.ndarray) -> np.ndarray:
        # Block means: an area resize by an integer factor averages exactly those blocks.
        cropped = np.ascontiguousarray(pixels[: bh * NOISE_BLOCK, : bw * NOISE_BLOCK])
        return cv2.resize(cropped, (bw, bh), interpolation=cv2.INTER_AREA).ravel()

    blocks = blocks_of(response)
    # Noise is cut off where the picture clips to black or white: judge the blocks in between
    # (when there are enough of them).
    levels = blocks_of(crop[1:-1, 1:-1].astype(np.float32))
    unclipped = blocks[(levels > NOISE_CLIPPED) & (levels < 255 - NOISE_CLIPPED)]
    if unclipped.size >= NOISE_MIN_BLOCKS:
        blocks = unclipped
    # E|X| = sigma * sqrt(2/pi) for Gaussian X, and the kernel multiplies sigma by 6.
    return float(math.sqrt(math.pi / 2) / 6 * np.percentile(blocks, 10))


def level_occupancy(native_rgb: np.ndarray) -> float | None:
    """Share of the levels in each channel's range that occur, best channel; None when no
    channel spans enough levels (or pixels) to judge."""
    if native_rgb.shape[0] * native_rgb.shape[1] < BANDING_MIN_PIXELS:
        return None
    # A sample of the pixels themselves (interpolation would add levels); a quarter of a
    # million pixels fill a continuous tone's levels.
    pixels = native_rgb.reshape(-1, 1, 3)
    step = max(1, pixels.shape[0] // BANDING_SAMPLE)
    sample = np.ascontiguousarray(pixels[::step])
    best = None
    for channel in range(3):
        hist = cv2.calcHist([sample], [channel], None, [256], [0, 256]).ravel()
        cumulative = np.cumsum(hist) / hist.sum()
        low = int(np.searchsorted(cumulative, 0.005))
        high = int(np.searchsorted(cumulative, 0.995))
        if high - low < BANDING_MIN_RANGE:
            continue
        share = float(np.count_nonzero(hist[low : high + 1]) / (high - low + 1))
        best = share if best is None else max(best, share)
    return best


def edge_cut(body: np.ndarray) -> tuple[float, str]:
    """The largest share of one frame edge that the subject covers, and which edge."""
    h, w = body.shape
    edges = {
        "top": body[0],
        "bottom": body[h - 1],
        "left": body[:, 0],
        "right": body[:, w - 1],
    }
    shares = {name: cv2.countNonZero(line) / line.size for name, line in edges.items()}
    name = max(shares, key=shares.get)
    return float(shares[name]), name


def tone_range(hist: np.ndarray) -> tuple[float, float]:
    """Luma at the 1st and 99th percentile of a histogram."""
    cumulative = np.cumsum(hist) / max(hist.sum(), 1.0)
    return float(np.searchsorted(cumulative, 0.01)), float(np.searchsorted(cumulative, 0.99))


def dull_highlights(p99: float, mean: float) -> float:
    """0..1: how much the frame looks underexposed (no highlights in a dim frame)."""
    return (1.0 - smoothstep(DULL_HIGH, OK_HIGH, p99)) * (1.0 - smoothstep(DIM_MEAN, OK_MEAN, mean))


def lifted_blacks(p1: float, mean: float) -> float:
    """0..1: how much the frame looks overexposed (no deep tones in a bright frame)."""
    return smoothstep(OK_LOW, LIFTED_LOW, p1) * smoothstep(BRIGHT_MEAN, GLARE_MEAN, mean)


# --- Scores and reasons -----------------------------------------------------------------


def noise_score(
    native_grey: np.ndarray, measures: dict[str, float], reasons: list[Reason]
) -> float:
    """Sensor-like noise over the picture, at native resolution; 1 = clean."""
    sigma = sensor_noise(native_grey)
    measures["noise_sigma"] = sigma
    score = 1.0 - smoothstep(NOISE_OK, NOISE_BAD, sigma)
    if score < 0.5:
        reasons.append(
            Reason(
                ReasonCode.NOISE,
                "The image is grainy: heavy noise over the picture.",
                f"noise in flat areas sigma {sigma:.1f} (0-255), fine below {NOISE_OK:.0f}",
            )
        )
    return score


def banding_score(
    native_rgb: np.ndarray, measures: dict[str, float], reasons: list[Reason]
) -> float:
    """Posterised tones (few levels, visible bands); 1 = continuous tone."""
    occupancy = level_occupancy(native_rgb)
    if occupancy is None:
        return 1.0
    measures["level_occupancy"] = occupancy
    score = smoothstep(BANDING_BAD, BANDING_OK, occupancy)
    if score < 0.5:
        reasons.append(
            Reason(
                ReasonCode.ARTEFACTS,
                "Banding: the tones are posterised into a few flat steps.",
                f"only {occupancy:.0%} of the levels in the tonal range occur, a photo has "
                f"most of them",
            )
        )
    return score


def framing_score(
    body: np.ndarray | None, measures: dict[str, float], reasons: list[Reason]
) -> float:
    """A subject on a plain backdrop that runs off the frame; 1 = inside it (or no backdrop
    to tell the subject by)."""
    if body is None:
        return 1.0
    cut, edge = edge_cut(body)
    measures["edge_cut"] = cut
    score = 1.0 - smoothstep(CUT_OK, CUT_BAD, cut)
    if score < 0.5:
        reasons.append(
            Reason(
                ReasonCode.CROPPED,
                f"The subject is cut off by the {edge} edge of the frame.",
                f"the subject covers {cut:.0%} of the {edge} edge, fine up to {CUT_OK:.0%}",
            )
        )
    return score
