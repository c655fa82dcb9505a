"""Backends turn image requests into pictures; one module per provider.

The types here are plain dataclasses, independent of Django models and of torch, so a job can
build requests without importing the ML stack and tests can patch one seam
(``generation.backends.diffusers.generate``) to stay off the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True)
class ModelSpec:
    """A pinned base model version."""

    key: str  # cache key, e.g. "demo-tiny:1"; one key must always mean the same weights
    source: str  # a Hugging Face id, a local diffusers folder, or a single .safetensors/.ckpt
    sha256: str = ""  # expected generation.hashing.sha256_path of a local source; "" = no check


@dataclass(frozen=True)
class LoraSpec:
    name: str  # adapter name, e.g. "tiny-style-a:1"
    path: str  # a .safetensors file (or a folder holding pytorch_lora_weights.safetensors)
    weight: float
    sha256: str = ""


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    negative_prompt: str
    seed: int
    width: int
    height: int
    steps: int
    guidance_scale: float
    scheduler: str = ""  # "" = the model's own; else a diffusers scheduler class name


@dataclass
class GeneratedImage:
    image: Image.Image
    seed: int
    duration_s: float  # this image's share of its batch's wall time
    device: str  # "cpu" or e.g. "cuda:0 NVIDIA H100 80GB HBM3"
    # Images in the same pipeline call; the exact floats depend on it (kernel choice by shape),
    # so an exact re-run uses the same batch size.
    batch_size: int = 1


class BackendError(Exception):
    """A generation failure; ``retryable`` says whether running the same work again may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


__all__ = [
    "BackendError",
    "GeneratedImage",
    "ImageRequest",
    "LoraSpec",
    "ModelSpec",
]
