from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generation.forms import CampaignBudgetForm, MonthBudgetForm, PriorityForm, TrialForm
from generation.grids import GRID_LABELS, grid_axes, matrix_comparison, matrix_grid
from generation.models import Campaign, MonthlyBudget
from generation.selectors import (
    campaign_cost,
    campaign_items,
    campaign_progress,
    campaigns_with_progress,
    cost_totals,
    item_product,
    progress_of_annotated,
)
from generation.services import (
    campaign_budget_set,
    campaign_control,
    campaign_set_priority,
    campaign_spend,
    month_budget_set,
    month_of,
    month_spend,
    prompt_template_version_activate,
    recipe_activate,
)
from generation.services.budgets import campaign_to_finish
from generation.services.control import ACTIONS
from studio.errors import InputError
from studio.roles import ADMIN, ALL_ROLES, CREATIVE, MANAGER, role_required

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


@require_GET
@role_required(*ALL_ROLES)
def campaign_detail(request: HttpRequest, pk) -> HttpResponse:
    campaign = _get_campaign_for_user(request, pk)
    status = request.GET.get("status", "")
    filter_error = ""
    try:
        items = campaign_items(campaign=campaign, status=status)
    except InputError as exc:
        filter_error, status = str(exc), ""
        items = campaign_items(campaign=campaign)
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    progress = campaign_progress(campaign=campaign)
    grid, grid_error = _grid(request, campaign)
    filter_error = filter_error or grid_error
    context = {
        "campaign": campaign,
        "grid": grid,
        "grid_axes": [(axis, GRID_LABELS[axis]) for axis in grid_axes(campaign)],
        "comparison": matrix_comparison(campaign=campaign, axis=grid.axis) if grid else None,
        "trial_form": TrialForm(campaign=campaign),
        "policy": getattr(campaign, "quality_policy", None),
        "progress": progress,
        "cost": campaign_cost(campaign=campaign),
        "spend": campaign_spend(campaign=campaign),
        "to_finish": campaign_to_finish(campaign=campaign) if progress.counts.get("queued") else 0,
        "budget_form": CampaignBudgetForm(initial={"cap": campaign.budget_cap}),
        "actions": _available_actions(campaign, progress),
        "priority_form": PriorityForm(initial={"priority": campaign.priority}),
        "page": page,
        "cards": [(item, item_product(item.row_data)) for item in page],
        "status": status,
        "filter_error": filter_error,
        "live": bool(progress.working),
    }
    template = "generation/campaign_detail.html"
    if request.htmx:
        template += "#live"
    return render(request, template, context, status=400 if filter_error else 200)


def _grid(request: HttpRequest, campaign: Campaign):
    """The rows × one axis grid ``?grid=lora`` asks for (``&seed=N``, ``&grid_page=N``)."""
    axis = request.GET.get("grid", "")
    if not axis:
        return None, ""

    def number(name: str) -> int:
        value = request.GET.get(name, "")
        return int(value) if value.isdigit() else 0

    try:
        grid = matrix_grid(
            campaign=campaign, axis=axis, seed=number("seed"), page=number("grid_page") or 1
        )
    except InputError as exc:
        return None, str(exc)
    return grid, ""


def _available_actions(campaign: Campaign, progress) -> list[tuple[str, str]]:
    """(action, label) of the controls that make sense for the campaign's status. Cancel
    comes last: the page shows it apart, as a danger action with a confirmation."""
    status = campaign.status
    actions = []
    if status == Campaign.Status.RUNNING:
        actions.append(("pause", "Pause"))
    if status == Campaign.Status.PAUSED:
        actions.append(("resume", "Resume"))
    if status != Campaign.Status.CANCELLED and progress.counts.get("failed"):
        actions.append(("retry", "Retry failed"))
    if status in (Campaign.Status.RUNNING, Campaign.Status.PAUSED):
        actions.append(("cancel", "Cancel"))
    return actions


@require_POST
@role_required(CREATIVE, ADMIN)
def campaign_action(request: HttpRequest, pk, action: str) -> HttpResponse:
    campaign = _get_campaign_for_user(request, pk)
    if action not in ACTIONS:
        raise Http404("No such action.")
    # Cancelling cannot be undone: a POST without ``confirm`` (a form without JS, an old
    # page, a stray request) gets the question instead of the cancellation.
    cancellable = campaign.status in Campaign.TRANSITIONS["cancel"][0]
    if action == "cancel" and cancellable and not request.POST.get("confirm"):
        progress = campaign_progress(campaign=campaign)
        return render(
            request,
            "generation/campaign_cancel_confirm.html",
            {"campaign": campaign, "progress": progress},
        )
    try:
        messages.success(request, campaign_control(campaign=campaign, action=action))
    except InputError as exc:
        messages.error(request, str(exc))
    return redirect("generation:campaign", pk=campaign.pk)


@require_POST
@role_required(MANAGER, ADMIN)  # changes what every new campaign uses: a manager's call
def campaign_promote(request: HttpRequest, pk) -> HttpResponse:
    """Make the chosen recipe of a recipe comparison (POST ``recipe``), or the chosen version
    of a template comparison (POST ``template``), the active version of its name."""
    campaign = _get_campaign_for_user(request, pk)
    axis = "template" if "template" in request.POST else "recipe"
    comparison = matrix_comparison(campaign=campaign, axis=axis)
    chosen = request.POST.get(axis, "")
    versions = {str(r.version.pk): r.version for r in comparison.results} if comparison else {}
    if chosen not in versions:
        what = "template versions" if axis == "template" else "recipes"
        messages.error(request, f"{axis}: choose one of the {what} this campaign compares")
    elif axis == "template":
        version = prompt_template_version_activate(version=versions[chosen], user=request.user)
        messages.success(
            request, f"{version} is now the active version of {version.template.name}."
        )
    else:
        recipe = recipe_activate(version=versions[chosen], user=request.user)
        messages.success(request, f"{recipe} is now the active version of {recipe.name}.")
    return redirect(reverse("generation:campaign", args=[campaign.pk]) + f"?grid={axis}")


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


@require_POST
@role_required(MANAGER, ADMIN)
def campaign_budget(request: HttpRequest, pk) -> HttpResponse:
    """A manager sets or removes the campaign's cap, and may resume it with the same press."""
    campaign = _get_campaign_for_user(request, pk)
    form = CampaignBudgetForm(request.POST)
    if form.is_valid():
        try:
            message = campaign_budget_set(
                campaign=campaign,
                cap=form.cleaned_data["cap"],
                user=request.user,
                resume=form.cleaned_data["resume"],
            )
        except InputError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, message)
    else:
        messages.error(
            request, "; ".join(f"{field}: {' '.join(e)}" for field, e in form.errors.items())
        )
    return redirect("generation:campaign", pk=campaign.pk)


@require_http_methods(["GET", "POST"])
@role_required(MANAGER, ADMIN)
def budgets(request: HttpRequest) -> HttpResponse:
    """This month's budget against spend, the budgets of other months, and the campaigns with
    a cap; a manager sets a month's budget here."""
    month = month_of()
    form = MonthBudgetForm(request.POST or None, initial={"month": f"{month:%Y-%m}"})
    if request.method == "POST" and form.is_valid():
        budget = month_budget_set(
            month=form.cleaned_data["month"], amount=form.cleaned_data["amount"], user=request.user
        )
        messages.success(request, f"Budget for {budget.month:%B %Y} set.")
        return redirect("generation:budgets")
    spent_by_month = {row["month"]: row["amount"] for row in cost_totals(by=("month",))}
    months = [
        (budget, spent_by_month.get(budget.month, 0))
        for budget in MonthlyBudget.objects.order_by("-month")[:12]
    ]
    capped = Campaign.objects.filter(budget_cap__isnull=False).order_by("-created_at")[:50]
    context = {
        "form": form,
        "month": month,
        "month_total": month_spend(month=month),
        "months": months,
        "capped": [(campaign, campaign_spend(campaign=campaign)) for campaign in capped],
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "generation/budgets.html", context, status=status)
