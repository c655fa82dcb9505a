"""Review reads: what waits for a human, and the decision history of an item."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet, Value

from generation.models import Campaign, Item
from review.models import ReviewDecision, ReviewTask, Verdict


def items_rejected_for(code: str) -> QuerySet[Item]:
    """Items rejected with this reason code, whoever rejected them: the scorers (the code
    is among the automatic reasons) or a reviewer (the code they picked). One query."""
    automatic = Q(quality__verdict=Verdict.REJECTED, quality__reason_codes__contains=[code])
    human = Q(review_task__decision=Verdict.REJECTED, review_task__reason_code=code)
    return Item.objects.filter(status=Item.Status.REJECTED).filter(automatic | human)


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


def last_undoable_decision(*, user) -> ReviewDecision | None:
    """The reviewer's latest decision that has not been undone, within the undo window."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    since = timezone.now() - timedelta(seconds=settings.STUDIO_REVIEW_UNDO_SECONDS)
    return (
        ReviewDecision.objects.filter(
            reviewer=user,
            action=ReviewDecision.Action.DECIDE,
            reversed_by__isnull=True,
            created_at__gte=since,
        )
        .select_related("task__item")
        .order_by("-created_at", "-pk")
        .first()
    )


def reviewer_stats(*, since=None, campaign_id=None) -> list[dict]:
    """Per reviewer: decisions, approvals, rejections, undos, decisions per active hour, and
    agreement with the way the automatic score leaned (decisions that were later undone do
    not count as decisions)."""
    from django.db.models import F, Max, Min

    decisions = ReviewDecision.objects.filter(reviewer__isnull=False)
    if since is not None:
        decisions = decisions.filter(created_at__gte=since)
    if campaign_id:
        decisions = decisions.filter(task__campaign_id=campaign_id)
    kept = Q(action=ReviewDecision.Action.DECIDE, reversed_by__isnull=True)
    rows = (
        decisions.values("reviewer", username=F("reviewer__username"))
        .annotate(
            decided=Count("pk", filter=kept),
            approved=Count("pk", filter=kept & Q(decision="approved")),
            rejected=Count("pk", filter=kept & Q(decision="rejected")),
            undone=Count("pk", filter=Q(action=ReviewDecision.Action.UNDO)),
            sent_back=Count("pk", filter=Q(action=ReviewDecision.Action.SEND_BACK)),
            with_lean=Count("pk", filter=kept & ~Q(automatic_verdict="")),
            agreed=Count("pk", filter=kept & Q(automatic_verdict=F("decision"))),
            first=Min("created_at", filter=Q(action=ReviewDecision.Action.DECIDE)),
            last=Max("created_at", filter=Q(action=ReviewDecision.Action.DECIDE)),
        )
        .order_by("username")
    )
    stats = []
    for row in rows:
        # Active time: first to last decision, plus a minute for the first look; a reviewer
        # who made 10 decisions in 5 minutes works at ~100/h, not 10/h over the window.
        hours = 1 / 60
        if row["first"] and row["last"]:
            hours += (row["last"] - row["first"]).total_seconds() / 3600
        row["per_hour"] = row["decided"] / hours if row["decided"] else 0.0
        row["agreement"] = row["agreed"] / row["with_lean"] if row["with_lean"] else None
        stats.append(row)
    return stats


def stored_card(result, rules: list[dict]):
    """A stored result as ``decide`` takes it, its content judged again by ``rules``: a
    calibration re-decides exactly as the scorer did, from the stored scores and detections."""
    from review.quality import ScoreCard
    from review.quality.content import judge

    scores = {name: value for name, value in result.scores.items() if name != "content"}
    card = ScoreCard(scores=scores, measures={}, hard_fail=result.hard_fail)
    if result.screen == "unavailable":
        card.screen = "unavailable"
    elif result.screen:
        check = judge(result.detections, rules)
        card.scores["content"] = check.score
        card.reasons = check.reasons
        card.screen = check.action or "clear"
    return card


def calibration(
    *,
    campaign,
    approve_at: float,
    reject_below: float,
    content_rules: list[dict] | None = None,
    bins: int = 20,
) -> dict:
    """The campaign's score histogram with the reviewers' decisions per bin, how many images
    the proposed thresholds and content rules would move between verdicts (re-deciding the
    stored scores and detections with the policy's weights, exactly as the scorer does), and
    per proposed content rule how many images it catches and how many it alone moves."""
    from review.models import QualityResult
    from review.quality import decide
    from review.quality.content import judge
    from review.vocabulary import reason_label

    policy = campaign.quality_policy
    current_rules = list(policy.content_rules or [])
    proposed_rules = current_rules if content_rules is None else list(content_rules)
    results = QualityResult.objects.filter(item__campaign=campaign).select_related(
        "item__review_task"
    )
    histogram = [
        {
            "low": i / bins,
            "high": (i + 1) / bins,
            "approved": 0,
            "review": 0,
            "rejected": 0,
            "human_approved": 0,
            "human_rejected": 0,
        }
        for i in range(bins)
    ]
    verdicts = ("approved", "review", "rejected")
    moves = {(a, b): 0 for a in verdicts for b in verdicts}
    rules = [
        {
            "code": rule["code"],
            "label": reason_label(rule["code"]),
            "action": rule["action"],
            "min_score": rule["min_score"],
            "caught": 0,
            "moved": 0,
        }
        for rule in proposed_rules
    ]
    screened = 0
    for result in results:
        row = histogram[min(int(result.overall * bins), bins - 1)]
        row[result.verdict] += 1
        task = getattr(result.item, "review_task", None)
        if task is not None and task.status == ReviewTask.Status.DECIDED:
            row[f"human_{task.decision}"] += 1
        proposal = {"approve_at": approve_at, "reject_below": reject_below}
        try:
            current = decide(
                stored_card(result, current_rules),
                approve_at=policy.approve_at,
                reject_below=policy.reject_below,
                weights=policy.weights,
            ).verdict
            proposed = decide(
                stored_card(result, proposed_rules), weights=policy.weights, **proposal
            ).verdict
        except ValueError:
            continue
        moves[(current, proposed)] += 1
        if not result.screen or result.screen == "unavailable":
            continue
        screened += 1
        for rule, stats in zip(proposed_rules, rules, strict=True):
            if not judge(result.detections, [rule]).flagged:
                continue
            stats["caught"] += 1
            others = [other for other in proposed_rules if other is not rule]
            alone = decide(stored_card(result, others), weights=policy.weights, **proposal)
            if alone.verdict != proposed:
                stats["moved"] += 1
    peak = max((r["approved"] + r["review"] + r["rejected"] for r in histogram), default=0)
    for row in histogram:
        row["total"] = row["approved"] + row["review"] + row["rejected"]
        row["height"] = round(100 * row["total"] / peak) if peak else 0
    changed = [{"from": a, "to": b, "count": n} for (a, b), n in moves.items() if a != b and n]
    return {
        "histogram": histogram,
        "moves": changed,
        "moved": sum(m["count"] for m in changed),
        "total": sum(moves.values()),
        "rules": rules,
        "screened": screened,
    }
