from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generation.forms import CampaignForm, PriorityForm
from generation.models import Campaign
from generation.prompts import InputError
from generation.selectors import (
    campaign_cost,
    campaign_progress,
    campaigns_with_progress,
    progress_of_annotated,
)
from generation.services import (
    ACTIONS,
    campaign_control,
    campaign_plan,
    campaign_set_priority,
    campaign_submit,
)
from studio.roles import ADMIN, ALL_ROLES, CREATIVE, role_required

DEMO_DATA = Path(__file__).resolve().parent / "demo_data"
SAMPLE_CSVS = ("products.csv", "game_assets.csv", "social_posts.csv")
PREVIEW_PROMPTS = 5
CAMPAIGNS_PER_PAGE = 20
ITEMS_PER_PAGE = 60


def _get_campaign_for_user(request: HttpRequest, pk) -> Campaign:
    """Every role may read every campaign; the decorator already checked the role."""
    return get_object_or_404(
        Campaign.objects.select_related(
            "template_version__template", "recipe__base_model", "quality_policy", "created_by"
        ),
        pk=pk,
    )


@require_GET
@role_required(*ALL_ROLES)
def dashboard(request: HttpRequest) -> HttpResponse:
    page = Paginator(campaigns_with_progress(), CAMPAIGNS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    rows = progress_of_annotated(page.object_list)
    context = {
        "page": page,
        "rows": rows,
        "live": any(progress.working for _, progress in rows),
    }
    template = "generation/dashboard.html"
    if request.htmx:
        template += "#campaigns"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@role_required(CREATIVE, ADMIN)
def campaign_create(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = CampaignForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                campaign = campaign_submit(**form.submit_kwargs(), user=request.user)
            except InputError as exc:
                form.add_input_error(exc)
            else:
                return redirect("generation:campaign", pk=campaign.pk)
    else:
        form = CampaignForm()
    return render(
        request, "generation/campaign_create.html", {"form": form, "samples": SAMPLE_CSVS}
    )


@require_POST
@role_required(CREATIVE, ADMIN)
def campaign_preview(request: HttpRequest) -> HttpResponse:
    """The first prompts and the item count of a filled-in form; creates nothing."""
    form = CampaignForm(request.POST, request.FILES)
    plan = None
    if form.is_valid():
        try:
            plan = campaign_plan(**form.service_kwargs())
        except InputError as exc:
            form.add_input_error(exc)
    context = {
        "form": form,
        "samples": SAMPLE_CSVS,
        "plan": plan,
        "prompts": plan.prompts(limit=PREVIEW_PROMPTS) if plan else [],
    }
    template = "generation/campaign_create.html"
    if request.htmx:
        template += "#preview"
    return render(request, template, context)


@require_GET
@role_required(CREATIVE, ADMIN)
def sample_csv(request: HttpRequest, name: str) -> FileResponse:
    if name not in SAMPLE_CSVS:
        raise Http404("No such sample.")
    return FileResponse(
        (DEMO_DATA / name).open("rb"),
        as_attachment=True,
        filename=name,
        content_type="text/csv; charset=utf-8",
    )


@require_GET
@role_required(*ALL_ROLES)
def campaign_detail(request: HttpRequest, pk) -> HttpResponse:
    campaign = _get_campaign_for_user(request, pk)
    items = campaign.items.select_related("quality", "asset").order_by("row_index", "variation")
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    progress = campaign_progress(campaign=campaign)
    context = {
        "campaign": campaign,
        "policy": getattr(campaign, "quality_policy", None),
        "progress": progress,
        "cost": campaign_cost(campaign=campaign),
        "actions": _available_actions(campaign, progress),
        "priority_form": PriorityForm(initial={"priority": campaign.priority}),
        "page": page,
        "live": bool(progress.working),
    }
    template = "generation/campaign_detail.html"
    if request.htmx:
        template += "#live"
    return render(request, template, context)


def _available_actions(campaign: Campaign, progress) -> list[tuple[str, str]]:
    """(action, label) of the controls that make sense for the campaign's status."""
    status = campaign.status
    actions = []
    if status == Campaign.Status.RUNNING:
        actions.append(("pause", "Pause"))
    if status == Campaign.Status.PAUSED:
        actions.append(("resume", "Resume"))
    if status in (Campaign.Status.RUNNING, Campaign.Status.PAUSED):
        actions.append(("cancel", "Cancel"))
    if status != Campaign.Status.CANCELLED and progress.counts.get("failed"):
        actions.append(("retry", "Retry failed"))
    return actions


@require_POST
@role_required(CREATIVE, ADMIN)
def campaign_action(request: HttpRequest, pk, action: str) -> HttpResponse:
    campaign = _get_campaign_for_user(request, pk)
    if action not in ACTIONS:
        raise Http404("No such action.")
    try:
        messages.success(request, campaign_control(campaign=campaign, action=action))
    except InputError as exc:
        messages.error(request, str(exc))
    return redirect("generation:campaign", pk=campaign.pk)


@require_POST
@role_required(CREATIVE, ADMIN)
def campaign_priority(request: HttpRequest, pk) -> HttpResponse:
    campaign = _get_campaign_for_user(request, pk)
    form = PriorityForm(request.POST)
    if form.is_valid():
        campaign_set_priority(campaign=campaign, priority=form.cleaned_data["priority"])
        messages.success(request, f"Priority set to {campaign.get_priority_display()}.")
    else:
        messages.error(request, "priority: choose high or normal")
    return redirect("generation:campaign", pk=campaign.pk)
