from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from studio.roles import ALL_ROLES
from studio.services import user_role_grant


class Command(BaseCommand):
    help = "Give a user a role (creative, reviewer, manager, admin)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", choices=ALL_ROLES)

    def handle(self, *args, username, role, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"username: no user named {username!r}", returncode=2)
        user_role_grant(user=user, role=role)
        self.stdout.write(f"{username} is now {role}")
