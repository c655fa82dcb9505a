from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from studio.errors import InputError
from studio.tokens import SCOPES, token_create


class Command(BaseCommand):
    help = "Create a personal API token for a user and print it (it is shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="What the token is for.")
        parser.add_argument(
            "--scopes", required=True, help=f"Comma-separated, of: {', '.join(SCOPES)}."
        )
        parser.add_argument("--expires", type=int, metavar="DAYS", help="Days until it expires.")

    def handle(self, *args, username, name, scopes, expires, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"username: no user named {username!r}", returncode=2)
        try:
            token, secret = token_create(user=user, name=name, scopes=scopes, expires_days=expires)
        except InputError as exc:
            raise CommandError("\n".join(exc.messages()), returncode=2) from None
        self.stdout.write(secret)
        expiry = (
            f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "no expiry"
        )
        self.stderr.write(
            f"token {token.name!r} for {username}: {', '.join(token.scopes)}; {expiry}"
        )
