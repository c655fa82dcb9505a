"""Project-level writes: the role groups and the demo users that `up` and seed_demo create."""

from __future__ import annotations

import os

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


def demo_password() -> str:
    return os.environ.get("STUDIO_DEMO_PASSWORD") or DEMO_PASSWORD_DEFAULT


def demo_users_ensure(*, password: str | None = None) -> list[tuple[str, str, str]]:
    """One user per role, created if missing; returns (role, username, password) triples.

    An existing user keeps its password (someone may have changed it on purpose) and its
    flags; only a missing group membership is added back. The returned password is the demo
    password a newly created user gets, so it is wrong for a user whose password was changed.
    """
    password = password or demo_password()
    User = get_user_model()
    result: list[tuple[str, str, str]] = []
    with transaction.atomic():
        roles_ensure()
        groups = {group.name: group for group in Group.objects.filter(name__in=ALL_ROLES)}
        for role, username in DEMO_USERNAMES.items():
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User(username=username, email=f"{username}@studio.invalid")
                if role == ADMIN:
                    user.is_staff = True
                    user.is_superuser = True
                user.set_password(password)
                user.save()
            user.groups.add(groups[role])
            result.append((role, username, password))
    return result
