"""Writes for the registry, campaigns and items (generation app).

The code lives in this package's modules: ``registry`` (base models, LoRAs, recipes, prompt
templates), ``campaigns`` (plan, submit, seeds, jobs, regeneration, completion), ``generate``
(the generation job: claim, generate, store, cost), ``recovery`` (items_reconcile) and
``control`` (pause, resume, cancel, retry, priority, reproduction). This module re-exports
their names so callers keep importing from ``generation.services``; patch a name in the module
that looks it up (``generation.services.campaigns.enqueue_generation``), not here.
"""

from __future__ import annotations

from generation.services.campaigns import (
    PURPOSE_COLUMN,
    SUPPORTED_BACKENDS,
    CampaignPlan,
    Output,
    batch_size_for,
    campaign_plan,
    campaign_submit,
    campaign_update_status,
    derive_seed,
    enqueue_generation,
    item_regenerate,
)
from generation.services.control import (
    ACTIONS,
    Reproduction,
    campaign_cancel,
    campaign_control,
    campaign_pause,
    campaign_resume,
    campaign_retry_failed,
    campaign_set_priority,
    item_reproduce,
)
from generation.services.generate import (
    image_request,
    item_cost,
    item_provenance,
    items_generate,
    lora_specs,
    model_spec,
    png_with_metadata,
)
from generation.services.recovery import items_reconcile
from generation.services.registry import (
    MAX_SIDE,
    MIN_SIDE,
    base_model_register,
    lora_register,
    prompt_template_version_create,
    recipe_create,
)
from generation.services.registry import (
    _activate as _activate,  # generation/admin.py activates the versions an admin saves
)

__all__ = [
    "ACTIONS",
    "MAX_SIDE",
    "MIN_SIDE",
    "PURPOSE_COLUMN",
    "SUPPORTED_BACKENDS",
    "CampaignPlan",
    "Output",
    "Reproduction",
    "base_model_register",
    "batch_size_for",
    "campaign_cancel",
    "campaign_control",
    "campaign_pause",
    "campaign_plan",
    "campaign_resume",
    "campaign_retry_failed",
    "campaign_set_priority",
    "campaign_submit",
    "campaign_update_status",
    "derive_seed",
    "enqueue_generation",
    "image_request",
    "item_cost",
    "item_provenance",
    "item_regenerate",
    "item_reproduce",
    "items_generate",
    "items_reconcile",
    "lora_register",
    "lora_specs",
    "model_spec",
    "png_with_metadata",
    "prompt_template_version_create",
    "recipe_create",
]
