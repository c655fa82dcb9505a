"""Perceptual hashes: style distance to a campaign's reference images, near-duplicates.

A 64-bit pHash (imagehash) is stored as 16 hex digits; the Hamming distance between two
hashes is the number of differing bits (0 = same picture, ~32 = unrelated).
"""

from __future__ import annotations

from collections.abc import Iterable

import imagehash
from PIL import Image

from review.vocabulary import Reason, ReasonCode

# pHash looks at a 32x32 greyscale copy; shrinking a large frame to this side first with a box
# filter (Image.reduce) gives the same bits to within noise and costs a fraction.
_PHASH_SOURCE_SIDE = 256


def phash_hex(image: Image.Image) -> str:
    factor = min(image.size) // _PHASH_SOURCE_SIDE
    if factor >= 2:
        image = image.reduce(factor)
    return str(imagehash.phash(image))


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def style_score(
    phash: str, references: Iterable[str], *, ok: int, bad: int
) -> tuple[float | None, int | None, list[Reason]]:
    """(score, nearest distance, reasons); score None when the campaign has no references."""
    distances = [hamming(phash, ref) for ref in references]
    if not distances:
        return None, None, []
    nearest = min(distances)
    if nearest <= ok:
        score = 1.0
    elif nearest >= bad:
        score = 0.0
    else:
        score = 1.0 - (nearest - ok) / (bad - ok)
    reasons = []
    if score < 0.5:
        reasons.append(
            Reason(
                ReasonCode.OFF_STYLE,
                "It does not look like the campaign's style references.",
                f"perceptual-hash distance {nearest} to the nearest reference, on style up to {ok}",
            )
        )
    return score, nearest, reasons
