"""Pages that span apps: launching a campaign (generation's plan with review's policy).

Registered in the ``generation`` URL namespace by studio/urls.py, next to the campaign pages.
"""

from __future__ import annotations

from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generation.forms import CampaignForm
from generation.services import campaign_estimate, campaign_plan
from studio.errors import InputError
from studio.launch import campaign_launch
from studio.roles import ADMIN, CREATIVE, role_required

DEMO_DATA = Path(__file__).resolve().parent.parent / "generation" / "demo_data"
SAMPLE_CSVS = ("products.csv", "game_assets.csv", "social_posts.csv")
PREVIEW_PROMPTS = 5


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
        request, "generation/campaign_create.html", {"form": form, "samples": SAMPLE_CSVS}
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
