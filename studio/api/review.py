"""The review queue for an outside review tool: claim the next image with its lease, decide."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.http import Http404
from ninja import Field, Router, Schema
from pydantic import ConfigDict

from review.models import ReviewTask
from review.services import review_task_claim_next, review_task_decide, review_task_release
from studio.api.core import require, scoped

router = Router(tags=["review"])


class ClaimIn(Schema):
    model_config = ConfigDict(extra="forbid")
    campaign: uuid.UUID | None = None


class TaskOut(Schema):
    id: str
    item: str
    campaign: str
    lease_token: str
    lease_until: datetime
    image_url: str
    prompt: str


class ClaimOut(Schema):
    task: TaskOut | None


class DecideIn(Schema):
    model_config = ConfigDict(extra="forbid")
    lease_token: uuid.UUID
    decision: str = Field(..., description="approved or rejected")
    reason_code: str = Field("", max_length=30)
    reason: str = Field("", max_length=2000)


class DecisionOut(Schema):
    id: str
    item: str
    status: str
    decision: str
    reason_code: str


class ReleaseIn(Schema):
    model_config = ConfigDict(extra="forbid")
    lease_token: uuid.UUID


def _task(task: ReviewTask) -> dict:
    return {
        "id": str(task.pk),
        "item": str(task.item_id),
        "campaign": str(task.campaign_id),
        "lease_token": str(task.lease_token),
        "lease_until": task.lease_until,
        "image_url": f"/api/v1/items/{task.item_id}/image",
        "prompt": task.item.prompt,
    }


@router.post(
    "/review/claim",
    response=ClaimOut,
    summary="Claim the next image to review",
    auth=scoped("review:write"),
)
def claim(request, payload: ClaimIn | None = None):
    caller = require(request, "review:write")
    campaign = payload.campaign if payload else None
    task = review_task_claim_next(user=caller.user, campaign_id=campaign)
    if task is None:
        return {"task": None}
    task = ReviewTask.objects.select_related("item").get(pk=task.pk)
    return {"task": _task(task)}


def _task_or_404(task_id) -> ReviewTask:
    task = ReviewTask.objects.filter(pk=task_id).first()
    if task is None:
        raise Http404
    return task


@router.post(
    "/review/tasks/{uuid:task_id}/decide",
    response=DecisionOut,
    summary="Decide a claimed image (its lease token proves the claim)",
    auth=scoped("review:write"),
)
def decide(request, task_id: str, payload: DecideIn):
    caller = require(request, "review:write")
    _task_or_404(task_id)
    task = review_task_decide(
        task_id=task_id,
        user=caller.user,
        token=payload.lease_token,
        decision=payload.decision,
        reason_code=payload.reason_code,
        reason=payload.reason,
    )
    return {
        "id": str(task.pk),
        "item": str(task.item_id),
        "status": task.status,
        "decision": task.decision,
        "reason_code": task.reason_code,
    }


@router.post(
    "/review/tasks/{uuid:task_id}/release",
    summary="Give a claim back (skip)",
    auth=scoped("review:write"),
)
def release(request, task_id: str, payload: ReleaseIn):
    caller = require(request, "review:write")
    _task_or_404(task_id)
    released = review_task_release(task_id=task_id, user=caller.user, token=payload.lease_token)
    return {"released": released}
