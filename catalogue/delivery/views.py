"""The delivery settings page of a campaign (creatives, managers, admins) and the download of
one rendition (every role; a withdrawn asset's only for admins)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from catalogue.delivery.files import file_response
from catalogue.delivery.forms import DeliveryForm
from catalogue.delivery.renditions import EXTENSIONS, delivery_for, delivery_update
from catalogue.models import Asset, Rendition
from catalogue.services import asset_download_name
from generation.models import Campaign
from studio.errors import InputError
from studio.roles import ADMIN, ALL_ROLES, CREATIVE, MANAGER, has_role, role_required

EDITORS = (CREATIVE, MANAGER, ADMIN)


def _get_campaign_for_user(request: HttpRequest, pk) -> Campaign:
    """Every role that may reach the page may read every campaign (the decorator checked)."""
    return get_object_or_404(Campaign, pk=pk)


@require_http_methods(["GET", "POST"])
@role_required(*EDITORS)
def delivery(request: HttpRequest, pk) -> HttpResponse:
    """A campaign's channels, formats, upscale limit and watermark; saving makes the
    renditions of its approved images again."""
    campaign = _get_campaign_for_user(request, pk)
    current = delivery_for(campaign)
    status = 200
    if request.method == "POST":
        form = DeliveryForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                delivery_update(campaign=campaign, user=request.user, **form.delivery_kwargs())
            except InputError as exc:
                form.add_input_errors(exc)
            else:
                messages.success(
                    request, "Delivery settings saved; the renditions are being made again."
                )
                return redirect("catalogue:delivery", pk=campaign.pk)
        status = 400
    else:
        form = DeliveryForm(initial=DeliveryForm.initial_for(current))
    context = {"campaign": campaign, "delivery": current, "form": form}
    return render(request, "catalogue/delivery.html", context, status=status)


def rendition_download_name(rendition: Rendition) -> str:
    """The asset's download name with the channel before the extension:
    ``SH-1001-aero-runner-red-v2-instagram.jpg``."""
    stem = asset_download_name(rendition.asset).rsplit(".", 1)[0]
    return f"{stem}-{rendition.channel}.{EXTENSIONS.get(rendition.format, rendition.format)}"


@require_GET
@role_required(*ALL_ROLES)
def rendition_download(request: HttpRequest, pk) -> HttpResponseBase:
    """One rendition under a human file name; a withdrawn asset's only for admins."""
    rendition = get_object_or_404(Rendition.objects.select_related("asset__item"), pk=pk)
    if rendition.asset.status == Asset.Status.WITHDRAWN and not has_role(request.user, ADMIN):
        raise PermissionDenied("This image was withdrawn; only an admin may download it.")
    return file_response(rendition.file.name, download_name=rendition_download_name(rendition))
