"""The budget banner on every page: thresholds reached and campaigns paused by a budget."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from generation.services.budgets import budget_notices
from studio.roles import user_roles


def budget_notices_context(request: HttpRequest) -> dict:
    """``budget_notices`` for people with a role; read only when a template shows them (an
    htmx fragment does not)."""
    if not user_roles(getattr(request, "user", None)):
        return {"budget_notices": []}
    return {"budget_notices": SimpleLazyObject(budget_notices)}
