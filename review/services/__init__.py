"""Writes of the review app: ``policies`` (thresholds, references), ``scoring`` (the
quality job: score and route) and ``queue`` (the human review queue)."""

from __future__ import annotations

from review.services.policies import (
    MAX_REFERENCE_BYTES,
    quality_policy_create,
    quality_policy_ensure,
    quality_policy_update,
    quality_thresholds_check,
    reference_image_add,
)
from review.services.queue import (
    ReviewError,
    item_send_back,
    review_decision_undo,
    review_task_claim_next,
    review_task_decide,
    review_task_release,
    review_tasks_claim_grid,
    review_tasks_decide,
    review_tasks_reroute,
)
from review.services.scoring import item_score, items_score

__all__ = [
    "MAX_REFERENCE_BYTES",
    "ReviewError",
    "item_score",
    "item_send_back",
    "items_score",
    "quality_policy_create",
    "quality_policy_ensure",
    "quality_policy_update",
    "quality_thresholds_check",
    "reference_image_add",
    "review_decision_undo",
    "review_task_claim_next",
    "review_task_decide",
    "review_task_release",
    "review_tasks_claim_grid",
    "review_tasks_decide",
    "review_tasks_reroute",
]
