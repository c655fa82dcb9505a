"""The "API access" pages: personal tokens and webhook subscriptions with their delivery log.

Base layer (imports no app): tokens and webhooks are studio's own. A new token's or
subscription's secret is in the answer to the POST that made it, and nowhere after.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from studio import tokens, webhooks
from studio.errors import InputError
from studio.models import ApiToken, WebhookSubscription
from studio.roles import ADMIN, ALL_ROLES, has_role, role_required

DELIVERIES_SHOWN = 50
_ERROR_FIELDS = {"name": "name", "scopes": "scopes", "expires_days": "expires_days"}


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. “PIM sync”.")
    scopes = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)
    expires_days = forms.IntegerField(
        label="Expires after (days)",
        required=False,
        min_value=1,
        max_value=tokens.MAX_EXPIRY_DAYS,
        help_text="Empty: never.",
    )

    def __init__(self, *args, user, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["scopes"].choices = [(s, s) for s in tokens.scopes_allowed(user)]


class WebhookForm(forms.Form):
    url = forms.URLField(label="URL", max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=[(name, f"{name} — {words}") for name, words in webhooks.EVENTS.items()],
        widget=forms.CheckboxSelectMultiple,
    )
    description = forms.CharField(max_length=200, required=False)

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


def _add_input_error(form: forms.Form, exc: InputError) -> None:
    for problem in exc.errors:
        form.add_error(problem.field if problem.field in form.fields else None, problem.message)


def _page(
    request: HttpRequest,
    *,
    token_form=None,
    webhook_form=None,
    new_token=None,
    new_subscription=None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    context = {
        "tokens": ApiToken.objects.filter(user=user),
        "subscriptions": WebhookSubscription.objects.filter(user=user),
        "token_form": token_form or TokenForm(user=user),
        "webhook_form": webhook_form or WebhookForm(),
        "new_token": new_token,
        "new_subscription": new_subscription,
        "scopes": tokens.SCOPES,
    }
    return render(request, "studio/api_access.html", context, status=status)


@require_GET
@role_required(*ALL_ROLES)
def api_access(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_POST
@role_required(*ALL_ROLES)
def token_new(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            token, secret = tokens.token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_days=form.cleaned_data["expires_days"],
            )
        except InputError as exc:
            _add_input_error(form, exc)
        else:
            return _page(request, new_token={"token": token, "secret": secret})
    return _page(request, token_form=form, status=400)


@require_POST
@role_required(*ALL_ROLES)
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    if tokens.token_revoke(token_id=pk, user=request.user):
        messages.success(request, "Token revoked; it no longer works.")
    else:
        messages.error(request, "No such token, or it was revoked already.")
    return redirect("api_access")


@require_POST
@role_required(*ALL_ROLES)
def webhook_new(request: HttpRequest) -> HttpResponse:
    form = WebhookForm(request.POST)
    if form.is_valid():
        try:
            subscription = webhooks.subscription_create(user=request.user, **form.cleaned_data)
        except InputError as exc:
            _add_input_error(form, exc)
        else:
            return _page(request, new_subscription=subscription)
    return _page(request, webhook_form=form, status=400)


def _subscription_for_user(request: HttpRequest, pk) -> WebhookSubscription:
    found = WebhookSubscription.objects.filter(pk=pk)
    if not has_role(request.user, ADMIN):
        found = found.filter(user=request.user)
    subscription = found.first()
    if subscription is None:
        raise Http404("No such subscription.")
    return subscription


@require_GET
@role_required(*ALL_ROLES)
def webhook_detail(request: HttpRequest, pk) -> HttpResponse:
    subscription = _subscription_for_user(request, pk)
    deliveries = (
        subscription.deliveries.select_related("event")
        .prefetch_related("log")
        .order_by("-created_at", "-pk")[:DELIVERIES_SHOWN]
    )
    return render(
        request,
        "studio/webhook_detail.html",
        {"subscription": subscription, "deliveries": deliveries},
    )


@require_POST
@role_required(*ALL_ROLES)
def webhook_toggle(request: HttpRequest, pk) -> HttpResponse:
    subscription = _subscription_for_user(request, pk)
    webhooks.subscription_update(subscription=subscription, active=not subscription.active)
    messages.success(request, "Subscription " + ("on." if subscription.active else "paused."))
    return redirect("webhook_detail", pk=subscription.pk)


@require_POST
@role_required(*ALL_ROLES)
def webhook_delete(request: HttpRequest, pk) -> HttpResponse:
    _subscription_for_user(request, pk).delete()
    messages.success(request, "Subscription deleted.")
    return redirect("api_access")


@require_POST
@role_required(*ALL_ROLES)
def webhook_redeliver(request: HttpRequest, pk, delivery_pk) -> HttpResponse:
    subscription = _subscription_for_user(request, pk)
    delivery = subscription.deliveries.filter(pk=delivery_pk).first()
    if delivery is None:
        raise Http404("No such delivery.")
    webhooks.delivery_redeliver(delivery=delivery)
    messages.success(request, f"{delivery.event.type} queued to be sent again.")
    return redirect("webhook_detail", pk=subscription.pk)
