"""Which items share a pipeline call, and how large a call may be (pure functions)."""

from __future__ import annotations

import hashlib
import json

from django.conf import settings

from generation.models import Backend


def derive_seed(base_seed: int, row_index: int, variation: int) -> int:
    """A campaign's fixed seed for one row and variation: reproducible from the base seed."""
    digest = hashlib.sha256(f"{base_seed}:{row_index}:{variation}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def batch_size_for(backend: str) -> int:
    """Images per pipeline call on a backend (GPU memory, the server's own limits)."""
    if backend == Backend.STABILITY:
        return 1
    if backend == Backend.AUTOMATIC1111:
        return settings.STUDIO_BATCH_SIZE_A1111
    return settings.STUDIO_BATCH_SIZE_DIFFUSERS


def batch_key(item) -> str:
    """Items with the same key can share one pipeline call: the pinned inputs only, never the
    facts of an earlier run (``Item.run``)."""
    return json.dumps([item.base_model_id, item.loras, item.params], sort_keys=True)
