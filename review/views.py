from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from generation.models import Item
from review.forms import DecisionForm, QueueFilterForm
from review.models import ReviewTask
from review.selectors import pending_review_count, review_filter_campaigns
from review.services import ReviewError, review_task_claim_next, review_task_decide
from studio.roles import ADMIN, REVIEWER, role_required


def _queue_url(campaign_id=None) -> str:
    url = reverse("review:queue")
    return f"{url}?{urlencode({'campaign': campaign_id})}" if campaign_id else url


def _task_details(task: ReviewTask) -> dict:
    item = Item.objects.select_related(
        "campaign__template_version__template", "base_model", "quality"
    ).get(pk=task.item_id)
    quality = getattr(item, "quality", None)
    scores, measures = [], []
    if quality is not None:
        for key, value in sorted(quality.scores.items()):
            if key.startswith("measure_"):
                measures.append((key.removeprefix("measure_"), value))
            else:
                scores.append((key, value))
    return {"item": item, "quality": quality, "scores": scores, "measures": measures}


@require_GET
@role_required(REVIEWER, ADMIN)
def queue(request: HttpRequest) -> HttpResponse:
    campaign_id = QueueFilterForm(request.GET).campaign_id()
    task = review_task_claim_next(user=request.user, campaign_id=campaign_id)
    context = {
        "campaigns": review_filter_campaigns(selected=campaign_id),
        "campaign_id": str(campaign_id) if campaign_id else "",
        "task": task,
        "pending": pending_review_count(campaign_id=campaign_id),
    }
    if task is not None:
        context |= _task_details(task)
        context["form"] = DecisionForm(initial={"token": task.lease_token, "campaign": campaign_id})
    return render(request, "review/queue.html", context)


@require_POST
@role_required(REVIEWER, ADMIN)
def decide(request: HttpRequest, pk) -> HttpResponseRedirect:
    form = DecisionForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            for error in errors:
                named = field in ("__all__", "reason_code", "reason_text")
                messages.error(request, error if named else f"{field}: {error}")
        return HttpResponseRedirect(_queue_url(form.cleaned_data.get("campaign")))
    campaign_id = form.cleaned_data["campaign"]
    try:
        review_task_decide(
            task_id=pk,
            user=request.user,
            token=form.cleaned_data["token"],
            decision=form.cleaned_data["decision"],
            reason=form.reason,
        )
    except ReviewError as exc:
        messages.error(request, str(exc))
    else:
        verb = "Approved" if form.cleaned_data["decision"] == "approved" else "Rejected"
        messages.success(request, f"{verb}. Here is the next one.")
    return HttpResponseRedirect(_queue_url(campaign_id))
