"""Writes for the registry, campaigns and items (generation app), named <entity>_<action>.

The code lives in this package's modules: ``registry`` (base models, LoRAs, recipes, prompt
templates), ``campaigns`` (plan, submit, regenerate), ``dispatch`` (items to generation
jobs), ``status`` (the only writer of campaign and item status), ``generate`` (the generation
job: claim, generate, store, cost), ``recovery`` (items_reconcile), ``control`` (pause,
resume, cancel, retry, priority, reproduction), ``ledger`` (cost_record: every cost, from any
app) and ``budgets`` (caps, monthly budgets, estimates, the budget pause and its alerts).
Patch a name in the module that looks it up, not here.
"""

from __future__ import annotations

from generation.services.budgets import (
    budget_amount_check,
    campaign_budget_set,
    campaign_estimate,
    campaign_spend,
    month_budget_clear,
    month_budget_set,
    month_parse,
    month_spend,
)
from generation.services.campaigns import (
    campaign_plan,
    campaign_submit,
    item_regenerate,
)
from generation.services.control import (
    campaign_cancel,
    campaign_control,
    campaign_pause,
    campaign_resume,
    campaign_retry_failed,
    campaign_set_priority,
    item_reproduce,
)
from generation.services.dispatch import items_dispatch, items_redispatch
from generation.services.generate import items_generate, items_requeue_or_fail
from generation.services.ledger import cost_record, item_charges_record, month_of
from generation.services.recovery import items_reconcile
from generation.services.registry import (
    base_model_activate,
    base_model_register,
    lora_activate,
    lora_register,
    prompt_template_version_activate,
    prompt_template_version_create,
    recipe_activate,
    recipe_create,
)
from generation.services.status import (
    campaign_complete_if_done,
    campaign_reopen,
    campaign_transition,
    item_status_change,
)

__all__ = [
    "budget_amount_check",
    "campaign_budget_set",
    "campaign_estimate",
    "campaign_spend",
    "cost_record",
    "item_charges_record",
    "month_budget_clear",
    "month_budget_set",
    "month_of",
    "month_parse",
    "month_spend",
    "base_model_activate",
    "base_model_register",
    "campaign_cancel",
    "campaign_complete_if_done",
    "campaign_control",
    "campaign_pause",
    "campaign_plan",
    "campaign_reopen",
    "campaign_resume",
    "campaign_retry_failed",
    "campaign_set_priority",
    "campaign_submit",
    "campaign_transition",
    "item_regenerate",
    "item_reproduce",
    "item_status_change",
    "items_dispatch",
    "items_generate",
    "items_reconcile",
    "items_redispatch",
    "items_requeue_or_fail",
    "lora_activate",
    "lora_register",
    "prompt_template_version_activate",
    "prompt_template_version_create",
    "recipe_activate",
    "recipe_create",
]
