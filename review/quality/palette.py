"""Dominant colours of an image, named from a fixed palette (for the catalogue's tags).

Pixels are clustered in CIE Lab (k-means on a small copy), where distances follow what people
see, and each cluster that covers enough of the frame is named after the nearest colour of
the palette below.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

# Name -> sRGB. Kept short: a tag should be a word a person would search for.
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (20, 20, 20),
    "grey": (128, 128, 128),
    "white": (245, 245, 245),
    "red": (200, 30, 40),
    "orange": (240, 130, 30),
    "yellow": (245, 215, 50),
    "green": (50, 160, 60),
    "teal": (30, 140, 140),
    "blue": (40, 90, 200),
    "navy": (25, 35, 90),
    "purple": (120, 60, 160),
    "pink": (240, 140, 180),
    "brown": (120, 75, 40),
    "beige": (220, 200, 165),
}
CLUSTERS = 5
MIN_SHARE = 0.10
SIDE = 64


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.reshape(-1, 1, 3).astype(np.uint8), cv2.COLOR_RGB2LAB).reshape(-1, 3)


_NAMES = list(PALETTE)
_PALETTE_LAB = _lab(np.array(list(PALETTE.values()))).astype(np.float32)


def dominant_colours(image: Image.Image) -> list[dict]:
    """[{"name", "share", "rgb"}] for the colours that cover at least MIN_SHARE of the frame,
    largest first; one entry per name (shares of the same name add up)."""
    small = np.asarray(image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BOX))
    lab = _lab(small).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    cv2.setRNGSeed(0)  # the same image always gets the same tags
    _, labels, centres = cv2.kmeans(lab, CLUSTERS, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    shares = np.bincount(labels.ravel(), minlength=CLUSTERS) / labels.size
    named: dict[str, dict] = {}
    for centre, share in zip(centres, shares, strict=True):
        nearest = int(np.argmin(((_PALETTE_LAB - centre) ** 2).sum(axis=1)))
        name = _NAMES[nearest]
        rgb = cv2.cvtColor(centre.reshape(1, 1, 3).astype(np.uint8), cv2.COLOR_LAB2RGB)[0, 0]
        entry = named.setdefault(name, {"name": name, "share": 0.0, "rgb": [int(c) for c in rgb]})
        entry["share"] += float(share)
    colours = [c | {"share": round(c["share"], 3)} for c in named.values()]
    return sorted((c for c in colours if c["share"] >= MIN_SHARE), key=lambda c: -c["share"])
