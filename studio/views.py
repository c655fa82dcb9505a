"""Pages that span apps: launching a campaign (generation's plan with review's policy).

Registered in the ``generation`` URL namespace by studio/urls.py, next to the campaign pages.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generation.forms import CampaignForm, TrialForm
from generation.models import Campaign
from generation.services import campaign_estimate, campaign_plan
from studio.errors import InputError
from studio.launch import campaign_launch, trial_launch
from studio.roles import ADMIN, CREATIVE, MANAGER, role_required

DEMO_DATA = Path(__file__).resolve().parent.parent / "generation" / "demo_data"
SAMPLE_CSVS = ("products.csv", "game_assets.csv", "social_posts.csv")
PREVIEW_PROMPTS = 5
PREVIEW_IMAGES = 8  # the first images with their matrix cell and parameters


@require_http_methods(["GET", "POST"])
@role_required(CREATIVE, ADMIN)
def campaign_create(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = CampaignForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            try:
                campaign = campaign_launch(**form.submit_kwargs(), user=request.user)
            except InputError as exc:
                form.add_input_error(exc)
            else:
                form.discard_kept_upload()
                return redirect("generation:campaign", pk=campaign.pk)
        form.keep_upload()  # the form is shown again: the user need not attach the file again
    else:
        form = CampaignForm(user=request.user)
    return render(
        request,
        "generation/campaign_create.html",
        {"form": form, "samples": SAMPLE_CSVS},
        # Shown again after a POST only with errors: a 400 names them, nothing was created.
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@role_required(CREATIVE, ADMIN)
def campaign_preview(request: HttpRequest) -> HttpResponse:
    """The first prompts, the item count, the sizes and the estimate (cost and time, against the
    cap and the month's budget) of a filled-in form; creates nothing (but keeps the upload
    when the whole page is shown again)."""
    form = CampaignForm(request.POST, request.FILES, user=request.user)
    plan = estimate = None
    if form.is_valid():
        try:
            plan = campaign_plan(**form.service_kwargs())
        except InputError as exc:
            form.add_input_error(exc)
        else:
            # What it should cost and take, from the recipes' history or the configured rates.
            estimate = campaign_estimate(plan=plan, cap=form.cleaned_data.get("budget_cap"))
    template = "generation/campaign_create.html"
    if request.htmx:
        template += "#preview"  # the page keeps its file input, and its kept-file token
    else:
        form.keep_upload()
    context = {
        "form": form,
        "samples": SAMPLE_CSVS,
        "plan": plan,
        "estimate": estimate,
        "reading": form.reading(plan.parsed) if plan else "",
        "prompts": plan.prompts(limit=PREVIEW_PROMPTS) if plan else [],
        "sample": plan.sample(limit=PREVIEW_IMAGES) if plan else [],
    }
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


@require_POST
@role_required(CREATIVE, MANAGER, ADMIN)
def campaign_trial(request: HttpRequest, pk) -> HttpResponse:
    """Start an A/B trial of two recipes (or two template versions) on a sample of this
    campaign's rows; it opens on the side-by-side grid by recipe (or template version)."""
    campaign = get_object_or_404(Campaign.objects.select_related("quality_policy"), pk=pk)
    form = TrialForm(request.POST, campaign=campaign)
    if not form.is_valid():
        messages.error(
            request, "; ".join(f"{field}: {' '.join(e)}" for field, e in form.errors.items())
        )
        return redirect("generation:campaign", pk=campaign.pk)
    data = form.cleaned_data
    try:
        trial = trial_launch(
            campaign=campaign,
            recipes=data["recipes"],
            templates=data["templates"],
            rows=data["rows"],
            seeds=data["seeds"],
            user=request.user,
        )
    except InputError as exc:
        messages.error(request, str(exc))
        return redirect("generation:campaign", pk=campaign.pk)
    messages.success(request, f"A/B trial started: {trial.items.count()} images.")
    axis = "template" if data["templates"] else "recipe"
    return redirect(reverse("generation:campaign", args=[trial.pk]) + f"?grid={axis}")
