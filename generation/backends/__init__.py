"""Backends turn image requests into pictures; one module per provider.

The types here are plain dataclasses, independent of Django models and of torch, so a job can
build requests without importing the ML stack and tests can patch one seam
(``generation.backends.diffusers.generate``) to stay off the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
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
    image: Image.Image | None  # None: the provider refused this one image (see ``error``)
    seed: int
    duration_s: float  # this image's share of its batch's wall time
    device: str  # "cpu" or e.g. "cuda:0 NVIDIA H100 80GB HBM3", or the provider's host
    # Images in the same pipeline call. Unless ``batch_invariant``, the exact floats depend on
    # it (kernel choice by shape), so an exact re-run uses the same batch size.
    batch_size: int = 1
    batch_invariant: bool = False  # computed per image: equal pixels at any batch size
    error: str = ""  # why there is no image, e.g. "CONTENT_FILTERED: ..."
    credits: float | None = None  # provider credits this image consumed (Stability)
    extra: dict = field(default_factory=dict)  # provider facts worth recording (model hash...)


class BackendError(Exception):
    """A generation failure; ``retryable`` says whether running the same work again may help.

    ``status`` is the provider's HTTP status when there was one.
    """

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


def get_backend(name: str) -> ModuleType:
    """The module that implements ``generate(model, loras, requests)`` for a backend name."""
    from importlib import import_module

    modules = {
        "diffusers": "generation.backends.diffusers",
        "automatic1111": "generation.backends.automatic1111",
        "stability": "generation.backends.stability",
    }
    if name not in modules:
        raise BackendError(f"unknown backend {name!r}")
    return import_module(modules[name])


__all__ = [
    "BackendError",
    "get_backend",
    "GeneratedImage",
    "ImageRequest",
    "LoraSpec",
    "ModelSpec",
]
