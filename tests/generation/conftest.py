from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir) -> dict:
    """The tiny random-weight SD model and its two LoRAs, built once per test session.

    ``{"model": <diffusers folder>, "loras": {"tiny-style-a": <file>, "tiny-style-b": <file>}}``
    """
    from generation.tiny import tiny_model_paths

    return tiny_model_paths(tiny_model_dir / "tiny")
