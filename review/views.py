from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generation.models import Campaign, Item
from review.forms import (
    DecisionForm,
    GridDecisionForm,
    PolicyForm,
    QueueFilterForm,
    ReferenceImageForm,
    SkipForm,
    UndoForm,
)
from review.models import ReviewTask
from review.selectors import (
    calibration,
    last_undoable_decision,
    pending_review_count,
    review_filter_campaigns,
    reviewer_stats,
)
from review.services import (
    ReviewError,
    item_send_back,
    quality_policy_update,
    reference_image_add,
    review_decision_undo,
    review_task_claim_next,
    review_task_decide,
    review_task_release,
    review_tasks_claim_grid,
    review_tasks_decide,
    review_tasks_reroute,
)
from studio.errors import InputError
from studio.roles import ADMIN, CREATIVE, MANAGER, REVIEWER, role_required

# Skipped task ids kept in the session so a skip is not handed straight back.
_SKIPPED = "review_skipped"
_SKIPPED_MAX = 50


def _queue_url(campaign_id=None, *, grid: bool = False) -> str:
    url = reverse("review:grid" if grid else "review:queue")
    return f"{url}?{urlencode({'campaign': campaign_id})}" if campaign_id else url


def _form_errors(request: HttpRequest, form) -> None:
    for field, errors in form.errors.items():
        for error in errors:
            named = field in ("__all__", "reason_code", "reason_text", "tasks")
            messages.error(request, error if named else f"{field}: {error}")


def _task_details(task: ReviewTask) -> dict:
    item = Item.objects.select_related(
        "campaign__template_version__template", "base_model", "quality", "regenerated_from"
    ).get(pk=task.item_id)
    quality = getattr(item, "quality", None)
    return {
        "item": item,
        "quality": quality,
        "scores": sorted(quality.scores.items()) if quality else [],
        "measures": sorted(quality.measures.items()) if quality else [],
        "references": list(item.campaign.reference_images.all()[:4]),
    }


def _common(request: HttpRequest, campaign_id) -> dict:
    return {
        "campaigns": review_filter_campaigns(selected=campaign_id),
        "campaign_id": str(campaign_id) if campaign_id else "",
        "pending": pending_review_count(campaign_id=campaign_id),
        "last": last_undoable_decision(user=request.user),
    }


@require_GET
@role_required(REVIEWER, ADMIN)
def queue(request: HttpRequest) -> HttpResponse:
    campaign_id = QueueFilterForm(request.GET).campaign_id()
    skipped = request.session.get(_SKIPPED, [])
    task = review_task_claim_next(user=request.user, campaign_id=campaign_id, exclude_ids=skipped)
    context = _common(request, campaign_id) | {"task": task}
    if task is not None:
        context |= _task_details(task)
        initial = {"token": task.lease_token, "campaign": campaign_id}
        context["form"] = DecisionForm(initial=initial)
        context["skip_form"] = SkipForm(initial=initial)
    return render(request, "review/queue.html", context)


@require_POST
@role_required(REVIEWER, ADMIN)
def decide(request: HttpRequest, pk) -> HttpResponseRedirect:
    form = DecisionForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return HttpResponseRedirect(_queue_url(form.cleaned_data.get("campaign")))
    campaign_id = form.cleaned_data["campaign"]
    try:
        review_task_decide(
            task_id=pk,
            user=request.user,
            token=form.cleaned_data["token"],
            decision=form.cleaned_data["decision"],
            **form.reason_kwargs(),
        )
    except ReviewError as exc:
        messages.error(request, str(exc))
    else:
        verb = "Approved" if form.cleaned_data["decision"] == "approved" else "Rejected"
        messages.success(request, f"{verb}. Here is the next one.")
    return HttpResponseRedirect(_queue_url(campaign_id))


@require_POST
@role_required(REVIEWER, ADMIN)
def skip(request: HttpRequest, pk) -> HttpResponseRedirect:
    form = SkipForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return HttpResponseRedirect(_queue_url())
    if review_task_release(task_id=pk, user=request.user, token=form.cleaned_data["token"]):
        skipped = [s for s in request.session.get(_SKIPPED, []) if s != str(pk)]
        request.session[_SKIPPED] = (skipped + [str(pk)])[-_SKIPPED_MAX:]
        messages.info(request, "Skipped; it went back to the queue for someone else.")
    else:
        messages.error(request, "That image was no longer yours; here is the next one.")
    return HttpResponseRedirect(_queue_url(form.cleaned_data["campaign"]))


@require_POST
@role_required(REVIEWER, ADMIN)
def undo(request: HttpRequest) -> HttpResponseRedirect:
    form = UndoForm(request.POST)
    form.is_valid()
    campaign_id = form.cleaned_data.get("campaign")
    try:
        task = review_decision_undo(
            user=request.user, decision_id=form.cleaned_data.get("decision")
        )
    except ReviewError as exc:
        messages.error(request, str(exc))
    else:
        request.session[_SKIPPED] = [
            s for s in request.session.get(_SKIPPED, []) if s != str(task.pk)
        ]
        messages.success(request, "Undone: the image is back in front of you.")
    return HttpResponseRedirect(_queue_url(campaign_id, grid=request.POST.get("from") == "grid"))


@require_POST
@role_required(REVIEWER, ADMIN)
def send_back(request: HttpRequest, pk) -> HttpResponseRedirect:
    campaign_id = QueueFilterForm(request.POST).campaign_id()
    try:
        new = item_send_back(item_id=pk, user=request.user)
    except (ReviewError, Item.DoesNotExist) as exc:
        messages.error(request, str(exc) if isinstance(exc, ReviewError) else "item: not found")
    else:
        messages.success(request, f"Sent back: regenerating with seed {new.seed}.")
    grid = request.POST.get("from") == "grid"
    return HttpResponseRedirect(
        _queue_url(None if campaign_id == QueueFilterForm.NO_CAMPAIGN else campaign_id, grid=grid)
    )


@require_GET
@role_required(REVIEWER, ADMIN)
def grid(request: HttpRequest) -> HttpResponse:
    campaign_id = QueueFilterForm(request.GET).campaign_id()
    tasks = review_tasks_claim_grid(user=request.user, campaign_id=campaign_id)
    items = {
        item.pk: item
        for item in Item.objects.filter(pk__in=[t.item_id for t in tasks]).select_related(
            "quality", "campaign"
        )
    }
    cards = [(task, items[task.item_id]) for task in tasks]
    context = _common(request, campaign_id) | {
        "cards": cards,
        "grid": True,
        "form": GridDecisionForm(initial={"campaign": campaign_id}),
    }
    return render(request, "review/grid.html", context)


@require_POST
@role_required(REVIEWER, ADMIN)
def grid_decide(request: HttpRequest) -> HttpResponseRedirect:
    form = GridDecisionForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return HttpResponseRedirect(_queue_url(form.cleaned_data.get("campaign"), grid=True))
    try:
        decided, errors = review_tasks_decide(
            user=request.user,
            claims=form.cleaned_data["tasks"],
            decision=form.cleaned_data["decision"],
            **form.reason_kwargs(),
        )
    except ReviewError as exc:
        messages.error(request, str(exc))
    else:
        verb = "Approved" if form.cleaned_data["decision"] == "approved" else "Rejected"
        messages.success(request, f"{verb} {len(decided)} image{'s' if len(decided) != 1 else ''}.")
        for error in errors:
            messages.error(request, error)
    return HttpResponseRedirect(_queue_url(form.cleaned_data["campaign"], grid=True))


@require_GET
@role_required(REVIEWER, MANAGER, ADMIN)
def stats(request: HttpRequest) -> HttpResponse:
    try:
        days = min(max(int(request.GET.get("days", 7)), 1), 365)
    except ValueError:
        days = 7
    rows = reviewer_stats(since=timezone.now() - timedelta(days=days))
    campaigns = Campaign.objects.select_related("quality_policy").order_by("-created_at")[:30]
    return render(
        request, "review/stats.html", {"rows": rows, "days": days, "campaigns": campaigns}
    )


def _get_campaign_for_user(request: HttpRequest, pk) -> Campaign:
    """Every campaign (with its policy) is open to the roles the decorator let in."""
    return get_object_or_404(
        Campaign.objects.select_related("quality_policy").filter(quality_policy__isnull=False),
        pk=pk,
    )


@require_http_methods(["GET", "POST"])
@role_required(MANAGER, ADMIN)
def calibrate(request: HttpRequest, pk) -> HttpResponse:
    campaign = _get_campaign_for_user(request, pk)
    policy = campaign.quality_policy
    current = {
        "approve_at": policy.approve_at,
        "reject_below": policy.reject_below,
        "unwanted_concepts": "\n".join(policy.unwanted_concepts or []),
    }
    rules = list(policy.content_rules or [])
    if request.method == "POST":
        form = PolicyForm(request.POST, current_rules=rules)
        if form.is_valid():
            try:
                quality_policy_update(
                    policy=policy,
                    approve_at=form.cleaned_data["approve_at"],
                    reject_below=form.cleaned_data["reject_below"],
                    unwanted_concepts=form.concepts,
                    content_rules=form.content_rules,
                )
            except InputError as exc:
                for problem in exc.errors:
                    field = problem.field if problem.field in form.fields else None
                    named = problem.message if field else f"{problem.field}: {problem.message}"
                    form.add_error(field, named)
            else:
                if form.cleaned_data.get("reroute"):
                    moved = review_tasks_reroute(campaign=campaign, user=request.user)
                    messages.success(
                        request,
                        f"Policy saved. Of the images waiting in review, {moved['approved']} "
                        f"were approved and {moved['rejected']} rejected under it; "
                        f"{moved['still_in_review']} still need a reviewer"
                        + (
                            f", and {moved['claimed']} open with a reviewer were left to them."
                            if moved["claimed"]
                            else "."
                        ),
                    )
                else:
                    messages.success(
                        request, "Policy saved; it applies to images scored from now on."
                    )
                return HttpResponseRedirect(reverse("review:calibrate", args=[campaign.pk]))
    elif "approve_at" in request.GET:
        form = PolicyForm(request.GET, current_rules=rules)
    else:
        form = PolicyForm(initial=current, current_rules=rules)
    valid = form.is_bound and form.is_valid()
    proposed = (
        (form.cleaned_data["approve_at"], form.cleaned_data["reject_below"])
        if valid
        else (policy.approve_at, policy.reject_below)
    )
    proposed_rules = form.content_rules if valid else rules
    context = {
        "campaign": campaign,
        "policy": policy,
        "waiting": ReviewTask.objects.filter(
            campaign=campaign, status=ReviewTask.Status.PENDING
        ).count(),
        "form": form,
        "proposed": {"approve_at": proposed[0], "reject_below": proposed[1]},
        "data": calibration(
            campaign=campaign,
            approve_at=proposed[0],
            reject_below=proposed[1],
            content_rules=proposed_rules,
        ),
    }
    template = "review/calibrate.html#preview" if request.htmx else "review/calibrate.html"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@role_required(CREATIVE, MANAGER, ADMIN)
def references(request: HttpRequest, pk) -> HttpResponse:
    campaign = _get_campaign_for_user(request, pk)
    form = ReferenceImageForm()
    if request.method == "POST":
        form = ReferenceImageForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                reference_image_add(
                    campaign=campaign, upload=form.cleaned_data["image"], user=request.user
                )
            except InputError as exc:
                form.add_error("image", exc.errors[0].message)
            else:
                messages.success(request, "Reference added; new images are compared with it.")
                return HttpResponseRedirect(reverse("review:references", args=[campaign.pk]))
    return render(
        request,
        "review/references.html",
        {"campaign": campaign, "form": form, "references": campaign.reference_images.all()},
        status=400 if form.errors else 200,
    )
