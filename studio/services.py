"""Project-level writes: the role groups and the demo users that `up` and seed_demo create."""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from studio.roles import ADMIN, ALL_ROLES, CREATIVE, MANAGER, REVIEWER

# A local demo on the embedded servers: a fixed, documented password is the point. Anything
# reachable by others sets STUDIO_DEMO_PASSWORD or changes the passwords (`changepassword`).
DEMO_PASSWORD_DEFAULT = "studio-demo"
DEMO_USERNAMES: dict[str, str] = {
    CREATIVE: "creative",
    REVIEWER: "reviewer",
    MANAGER: "manager",
    ADMIN: "admin",
}


def roles_ensure() -> None:
    """Create the role groups that are missing; running it again changes nothing."""
    with transaction.atomic():
        for name in ALL_ROLES:
            Group.objects.get_or_create(name=name)


def demo_password() -> str | None:
    """The demo users' password: STUDIO_DEMO_PASSWORD, else the known default only in DEBUG.

    Outside DEBUG a known password on a superuser would be an open door, so new demo users
    get an unusable password until someone sets one (`changepassword`).
    """
    configured = os.environ.get("STUDIO_DEMO_PASSWORD")
    if configured:
        return configured
    return DEMO_PASSWORD_DEFAULT if settings.DEBUG else None


def user_role_grant(*, user, role: str) -> None:
    """Give a user a role. The admin role also opens the Django admin and the queue dashboard
    (both check is_staff), and grants every permission."""
    if role not in ALL_ROLES:
        raise ValueError(f"role: {role!r} is not one of {', '.join(ALL_ROLES)}")
    with transaction.atomic():
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
        if role == ADMIN and not (user.is_staff and user.is_superuser):
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])


def demo_users_ensure(*, password: str | None = None) -> list[tuple[str, str, str | None]]:
    """One user per role, created if missing; returns (role, username, password) triples.

    An existing user keeps its password (someone may have changed it on purpose) and its
    flags; only a missing group membership is added back. The returned password is the demo
    password a newly created user gets, so it is wrong for a user whose password was changed.
    """
    password = password or demo_password()
    User = get_user_model()
    result: list[tuple[str, str, str | None]] = []
    with transaction.atomic():
        roles_ensure()
        for role, username in DEMO_USERNAMES.items():
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User(username=username, email=f"{username}@studio.invalid")
                user.set_password(password)  # None: an unusable password
                user.save()
            user_role_grant(user=user, role=role)
            result.append((role, username, password))
    return result
