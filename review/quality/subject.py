"""Where the subject is, on a plain studio backdrop: the backdrop colour is estimated from
the border, and the pixels that differ from it (plus strong edges) are the subject."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

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


@dataclass
class Subject:
    """Where the subject is, on a plain backdrop."""

    backdrop: np.ndarray  # RGB colour of the backdrop
    body: np.ndarray | None  # uint8 mask: pixels that differ from the backdrop colour
    outline: np.ndarray | None  # body plus strong edges, for measuring sharpness


def find_subject(rgb: np.ndarray, grey: np.ndarray) -> Subject | None:
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
    if np.count_nonzero(near(border, backdrop, BG_TOLERANCE)) < BG_PLAIN_FRACTION * len(border):
        return None

    body = cv2.bitwise_not(near(rgb, backdrop, SUBJECT_TOLERANCE))
    if cv2.countNonZero(body) < MIN_SUBJECT_FRACTION * body.size:
        # Specks on a backdrop: no distinct subject.
        return Subject(backdrop=backdrop, body=None, outline=None)
    gx = cv2.convertScaleAbs(cv2.Sobel(grey, cv2.CV_16S, 1, 0, ksize=3))
    gy = cv2.convertScaleAbs(cv2.Sobel(grey, cv2.CV_16S, 0, 1, ksize=3))
    _, edges = cv2.threshold(cv2.add(gx, gy), EDGE_THRESHOLD, 255, cv2.THRESH_BINARY)
    # Dilate so the subject's outline against the backdrop, usually its strongest edge, is
    # inside the measured region.
    outline = cv2.dilate(cv2.bitwise_or(body, edges), np.ones((7, 7), np.uint8))
    return Subject(backdrop=backdrop, body=body, outline=outline)


def near(pixels: np.ndarray, colour: np.ndarray, tolerance: int) -> np.ndarray:
    """255 where every channel is within tolerance of colour (a box in RGB), else 0."""
    low = np.clip(colour.astype(np.int16) - tolerance, 0, 255).astype(np.uint8)
    high = np.clip(colour.astype(np.int16) + tolerance, 0, 255).astype(np.uint8)
    return cv2.inRange(pixels, low, high)
