"""The scorers on real photographs they were not tuned on (scikit-image's bundled samples),
and on defective copies of them made here."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from review.quality import decide, default_policy, score_image

skimage = pytest.importorskip("skimage", reason="scikit-image (dev extra) ships the photographs")
PHOTOS = [
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "brick.png",
    "grass.png",
    "coins.png",
    "retina.jpg",
    "moon.png",
    "horse.png",
]
DEFECTS = {
    "blurred": lambda a: cv2.GaussianBlur(a, (0, 0), 4),
    "washed out": lambda a: (a * 0.25 + 170).clip(0, 255),
    "underexposed": lambda a: a * 0.12,
    "blank": lambda a: np.full_like(a, 200.0),
    "noise": lambda a: np.random.default_rng(0).integers(0, 256, a.shape),
}


def photo(name: str) -> np.ndarray:
    path = Path(skimage.__file__).parent / "data" / name
    return np.asarray(Image.open(path).convert("RGB")).astype(np.float64)


def verdict(pixels: np.ndarray) -> str:
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    return decide(score_image(image), **default_policy()).verdict


@pytest.mark.parametrize("name", PHOTOS)
def test_a_real_photograph_is_never_rejected(name):
    assert verdict(photo(name)) in {"approved", "review"}


def test_most_real_photographs_are_approved_without_review():
    approved = [name for name in PHOTOS if verdict(photo(name)) == "approved"]
    assert len(approved) >= len(PHOTOS) * 2 // 3, approved


@pytest.mark.parametrize("defect", DEFECTS)
@pytest.mark.parametrize("name", PHOTOS)
def test_a_defective_copy_of_a_real_photograph_is_never_approved(name, defect):
    assert verdict(DEFECTS[defect](photo(name))) in {"review", "rejected"}


@pytest.mark.parametrize("name", PHOTOS)
def test_blank_and_noise_copies_are_rejected_outright(name):
    assert verdict(DEFECTS["blank"](photo(name))) == "rejected"
    assert verdict(DEFECTS["noise"](photo(name))) == "rejected"
