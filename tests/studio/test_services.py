from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from studio.roles import user_roles
from studio.services import demo_users_ensure, user_role_grant


def test_the_admin_role_opens_the_django_admin(db):
    user = User.objects.create_user("adele", password="x-long-password")
    user_role_grant(user=user, role="admin")
    user.refresh_from_db()
    assert user.is_staff and user.is_superuser
    assert user_roles(user) == {"creative", "reviewer", "manager", "admin"}


def test_other_roles_do_not_make_staff(db):
    user = User.objects.create_user("rob", password="x-long-password")
    user_role_grant(user=user, role="reviewer")
    user.refresh_from_db()
    assert not user.is_staff
    assert user_roles(user) == {"reviewer"}


def test_an_unknown_role_is_refused(db):
    user = User.objects.create_user("rob", password="x-long-password")
    with pytest.raises(ValueError, match="role: 'boss'"):
        user_role_grant(user=user, role="boss")


def test_demo_users_get_the_known_password_only_in_debug(db, settings, monkeypatch):
    monkeypatch.delenv("STUDIO_DEMO_PASSWORD", raising=False)
    settings.DEBUG = False
    users = demo_users_ensure()
    assert {password for _, _, password in users} == {None}
    assert not User.objects.get(username="admin").has_usable_password()
    User.objects.all().delete()
    settings.DEBUG = True
    demo_users_ensure()
    assert User.objects.get(username="admin").check_password("studio-demo")


def test_role_grant_command_grants_and_refuses_unknown_users(db):
    User.objects.create_user("cleo", password="x-long-password")
    out = io.StringIO()
    call_command("role_grant", "cleo", "creative", stdout=out)
    assert "cleo is now creative" in out.getvalue()
    with pytest.raises(CommandError) as error:
        call_command("role_grant", "nobody", "creative")
    assert error.value.returncode == 2
