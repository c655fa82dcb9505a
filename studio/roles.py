"""Roles are Django groups. A superuser has every role."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

CREATIVE = "creative"
REVIEWER = "reviewer"
MANAGER = "manager"
ADMIN = "admin"
ALL_ROLES = (CREATIVE, REVIEWER, MANAGER, ADMIN)


def user_roles(user) -> set[str]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    if user.is_superuser:
        return set(ALL_ROLES)
    cached = getattr(user, "_studio_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        if ADMIN in cached:
            cached = set(ALL_ROLES)
        user._studio_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def role_required(*roles: str) -> Callable:
    """Login first (redirect), then 403 unless the user has one of ``roles``."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            if not has_role(request.user, *roles):
                raise PermissionDenied("Your role does not allow this page.")
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorator


def roles_context(request: HttpRequest) -> dict:
    roles = user_roles(getattr(request, "user", None))
    return {"studio_roles": roles}
