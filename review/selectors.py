"""Review reads: what waits for a human, and the decision history of an item."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet, Value

from generation.models import Campaign
from review.models import ReviewDecision, ReviewTask


def campaigns_with_pending_reviews() -> QuerySet[Campaign]:
    """Campaigns that have review tasks, annotated with ``n_pending``, newest first."""
    return (
        Campaign.objects.annotate(
            n_tasks=Count("review_tasks"),
            n_pending=Count(
                "review_tasks", filter=Q(review_tasks__status=ReviewTask.Status.PENDING)
            ),
        )
        .filter(n_tasks__gt=0)
        .order_by("-created_at")
    )


def review_filter_campaigns(*, selected=None) -> list[Campaign]:
    """The campaign filter's options: those with reviews, plus the selected one if it has none."""
    campaigns = list(campaigns_with_pending_reviews())
    if selected and str(selected) not in {str(c.pk) for c in campaigns}:
        campaigns += list(Campaign.objects.filter(pk=selected).annotate(n_pending=Value(0)))
    return campaigns


def pending_review_count(*, campaign_id=None) -> int:
    tasks = ReviewTask.objects.filter(status=ReviewTask.Status.PENDING)
    if campaign_id:
        tasks = tasks.filter(campaign_id=campaign_id)
    return tasks.count()


def review_decisions_for_item(*, item_id) -> QuerySet[ReviewDecision]:
    return (
        ReviewDecision.objects.filter(task__item_id=item_id)
        .select_related("reviewer")
        .order_by("created_at")
    )
