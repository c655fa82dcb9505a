"""Synthetic test images for the quality scorers, drawn with numpy/OpenCV (no downloaded data).

Every fixture returns a fresh RGB ``PIL.Image`` so a test may modify it freely; the pixels are
built once per session because drawing and blurring 1024² frames costs a few ms each.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import cv2
import numpy as np
import pytest
from PIL import Image

SIZE = 1024


@cache
def _textured_scene() -> np.ndarray:
    """A busy, in-focus scene: gradient backdrop, shapes, lines, a checkerboard and text."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    img = np.dstack(
        [60 + 120 * x / SIZE, 80 + 100 * y / SIZE, 170 - 80 * (x + y) / (2 * SIZE)]
    ).astype(np.uint8)
    for _ in range(60):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, y0 = (int(v) for v in rng.integers(0, SIZE, 2))
        kind = rng.integers(0, 3)
        if kind == 0:
            w, h = (int(v) for v in rng.integers(20, 200, 2))
            cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), colour, -1)
        elif kind == 1:
            cv2.circle(img, (x0, y0), int(rng.integers(10, 120)), colour, -1, cv2.LINE_AA)
        else:
            x1, y1 = (int(v) for v in rng.integers(0, SIZE, 2))
            cv2.line(img, (x0, y0), (x1, y1), colour, int(rng.integers(1, 6)), cv2.LINE_AA)
    # Fine, high-frequency detail: a checkerboard patch and lines of text.
    checker = ((np.indices((240, 240)).sum(axis=0) // 8) % 2 * 255).astype(np.uint8)
    img[700:940, 80:320] = checker[..., None]
    for row in range(6):
        cv2.putText(
            img,
            "Studio quality 0123",
            (380, 640 + row * 55),
            cv2.FONT_HERSHEY_SIMPLEX,
            1.3,
            (20, 20, 20),
            2,
            cv2.LINE_AA,
        )
    return img


@cache
def _product_on_white() -> np.ndarray:
    """A sneaker-like product with seams, laces, text and fabric texture on pure white."""
    rng = np.random.default_rng(11)
    img = np.full((SIZE, SIZE, 3), 255, np.uint8)
    upper = np.array(
        [
            [190, 640],
            [260, 470],
            [420, 420],
            [520, 340],
            [640, 330],
            [700, 430],
            [820, 520],
            [860, 640],
        ],
        np.int32,
    )
    cv2.fillPoly(img, [upper], (40, 70, 200), cv2.LINE_AA)
    # Fabric texture inside the upper only, so the white background stays pure white.
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(mask, [upper], 255)
    texture = rng.normal(0, 6, (SIZE, SIZE, 1))
    textured = np.clip(img.astype(np.float32) + texture, 0, 255).astype(np.uint8)
    img[mask > 0] = textured[mask > 0]
    cv2.polylines(img, [upper], True, (20, 20, 60), 4, cv2.LINE_AA)
    # Sole, toe cap, seams, laces, eyelets and a printed logo.
    cv2.rectangle(img, (170, 640), (880, 700), (235, 235, 235), -1)
    cv2.rectangle(img, (170, 640), (880, 700), (90, 90, 90), 3)
    for x in range(180, 880, 24):
        cv2.line(img, (x, 700), (x + 10, 688), (120, 120, 120), 2)
    cv2.ellipse(img, (780, 600), (90, 50), 0, 180, 360, (230, 230, 240), 3, cv2.LINE_AA)
    for i in range(6):
        p = (470 + i * 40, 380 + i * 14)
        cv2.line(img, (p[0] - 30, p[1] + 20), (p[0] + 30, p[1] - 20), (250, 250, 250), 5)
        cv2.circle(img, (p[0] - 34, p[1] + 22), 6, (200, 200, 200), -1)
    for x in range(270, 820, 14):
        cv2.circle(img, (x, 560), 2, (230, 230, 230), -1)
    cv2.putText(
        img, "STUDIO", (330, 540), cv2.FONT_HERSHEY_DUPLEX, 2.0, (255, 255, 255), 4, cv2.LINE_AA
    )
    # A real lens is never perfect: a touch of softness, as in a good studio photograph.
    # Far from the product the backdrop stays exactly 255.
    return _blur(img, 1.8)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma)


def _tone(img: np.ndarray, gain: float, offset: float) -> np.ndarray:
    return np.clip(img.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)


@cache
def _pixels(name: str) -> np.ndarray:
    scene = _textured_scene()
    product = _product_on_white()
    rng = np.random.default_rng(3)
    builders: dict[str, Callable[[], np.ndarray]] = {
        "sharp_scene": lambda: scene,
        "soft_scene": lambda: _blur(scene, 2.5),
        "blurred_scene": lambda: _blur(scene, 8.0),
        "product": lambda: product,
        "blurred_product": lambda: _blur(product, 8.0),
        # Washed out: all tones squeezed into a narrow band around light grey.
        "washed_out": lambda: _tone(scene, 0.15, 150),
        "overexposed": lambda: _tone(scene, 2.4, 90),
        "underexposed": lambda: _tone(scene, 0.12, 0),
        "blank": lambda: np.full((SIZE, SIZE, 3), (200, 120, 40), np.uint8),
        "black": lambda: np.zeros((SIZE, SIZE, 3), np.uint8),
        "noise": lambda: rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
    }
    pixels = builders[name]()
    pixels.setflags(write=False)
    return pixels


def make_image(name: str) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(_pixels(name)))


@pytest.fixture
def image() -> Callable[[str], Image.Image]:
    """``image("product")`` → a fresh 1024² RGB image of the named synthetic scene."""
    return make_image


@pytest.fixture(scope="session")
def tiny_clip_files(tmp_path_factory):
    """The project's tiny open_clip config and a random-weight checkpoint, built once."""
    pytest.importorskip("open_clip")
    import torch

    from review.quality.clip import build_tiny_clip

    torch.set_num_threads(1)
    return build_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture
def tiny_clip(settings, tiny_clip_files):
    """CLIP scoring configured with the tiny model, as a worker would load it from settings."""
    from review.quality.clip import TINY_CLIP_NAME

    config, checkpoint = tiny_clip_files
    settings.STUDIO_CLIP_MODEL = TINY_CLIP_NAME
    settings.STUDIO_CLIP_PRETRAINED = str(checkpoint)
    settings.STUDIO_CLIP_CONFIG = str(config)
    return settings
