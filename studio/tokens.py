"""Personal API tokens: scopes within the user's role, stored hashed, and a per-token rate limit.

Base layer: imports no app. A token is ``studio_`` + 43 random URL-safe characters; only its
sha256 is stored, so a leaked database does not leak working tokens.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from studio import freshness
from studio.errors import FieldError, InputError
from studio.models import ApiToken
from studio.roles import ADMIN, ALL_ROLES, CREATIVE, MANAGER, REVIEWER, user_roles

TOKEN_PREFIX = "studio_"
# Each scope, and the roles that may hold it (an admin has every role).
SCOPES: dict[str, tuple[str, ...]] = {
    "campaigns:read": ALL_ROLES,
    "campaigns:write": (CREATIVE, ADMIN),
    "review:write": (REVIEWER, ADMIN),
    "catalogue:read": ALL_ROLES,
    "reports:read": (MANAGER, ADMIN),
    "admin": (ADMIN,),
}
MAX_EXPIRY_DAYS = 3650
# last_used_at is written at most this often per token: a busy client is not a write per call.
LAST_USED_EVERY = timedelta(seconds=60)


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def scopes_allowed(user) -> list[str]:
    """The scopes this user's roles allow, in SCOPES order."""
    roles = user_roles(user)
    return [scope for scope, holders in SCOPES.items() if roles & set(holders)]


def scope_allows(user, scopes, scope: str) -> bool:
    """``scope`` is among ``scopes`` and the user's role still allows it (a role taken away
    after the token was made takes its scopes with it)."""
    return scope in scopes and scope in scopes_allowed(user)


def _scopes_check(user, scopes) -> list[str]:
    if isinstance(scopes, str):
        scopes = [part.strip() for part in scopes.split(",")]
    scopes = [s for s in dict.fromkeys(scopes or []) if s]
    if not scopes:
        raise InputError("scopes", f"choose at least one of {', '.join(SCOPES)}")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise InputError("scopes", f"{', '.join(unknown)}: not a scope; use {', '.join(SCOPES)}")
    allowed = scopes_allowed(user)
    refused = [s for s in scopes if s not in allowed]
    if refused:
        raise InputError(
            "scopes",
            f"{', '.join(refused)}: not allowed by your role (allowed: "
            f"{', '.join(allowed) or 'none'})",
        )
    return scopes


def token_create(
    *, user, name: str, scopes, expires_days: int | None = None
) -> tuple[ApiToken, str]:
    """Make a token; returns it and its secret (the only time the secret is known).

    Raises InputError naming the field (name, scopes, expires_days)."""
    errors = []
    name = (name or "").strip()
    if not name:
        errors.append(FieldError("name", "a token needs a name"))
    elif len(name) > 100:
        errors.append(FieldError("name", "use at most 100 characters"))
    if expires_days is not None and not (
        isinstance(expires_days, int) and 1 <= expires_days <= MAX_EXPIRY_DAYS
    ):
        errors.append(
            FieldError("expires_days", f"a whole number of days from 1 to {MAX_EXPIRY_DAYS}")
        )
    try:
        scopes = _scopes_check(user, scopes)
    except InputError as exc:
        errors += exc.errors
    if errors:
        raise InputError(errors)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        token_hash=token_hash(secret),
        scopes=scopes,
        expires_at=expires_at,
    )
    return token, secret


def token_revoke(*, token_id, user) -> bool:
    """Revoke one of the user's tokens (an admin may revoke anyone's). False if it was not
    theirs or already revoked."""
    tokens = ApiToken.objects.filter(pk=token_id, revoked_at__isnull=True)
    if ADMIN not in user_roles(user):
        tokens = tokens.filter(user=user)
    revoked = bool(tokens.update(revoked_at=timezone.now()))
    if revoked:
        auth_changed()
    return revoked


def token_authenticate(secret: str) -> ApiToken | None:
    """The live token for a secret (not revoked, not expired, its user active), or None."""
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    digest = token_hash(secret)
    stamp = freshness.stamp(freshness.AUTH)
    token = _known.get(digest, stamp)
    if token is None:
        token = (
            ApiToken.objects.select_related("user")
            .filter(token_hash=digest, revoked_at__isnull=True)
            .first()
        )
        if token is None:
            return None
        _known.put(digest, stamp, token)
    now = timezone.now()
    if not token.user.is_active:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_EVERY:
        with transaction.atomic():
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


# --- Known tokens: each process keeps the tokens it has looked up ------------------------------
#
# An integrator polling a campaign sends the same token many times a second; looking it (and
# its user, and the user's roles) up each time was a third of a status read. A process keeps
# the tokens it has found under the "auth" stamp (studio.freshness), which auth_changed()
# moves whenever a token is revoked or a user, their groups or a group changes (studio.apps
# connects it), so every process drops its copies at once. Without Redis nothing is kept, and
# nothing is kept longer than KNOWN_TOKEN_SECONDS, which bounds a change missed while Redis
# was away.

KNOWN_TOKEN_SECONDS = 60
KNOWN_TOKENS_MAX = 4096


class _KnownTokens:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: OrderedDict[str, tuple[bytes, float, ApiToken]] = OrderedDict()

    def get(self, digest: str, stamp: bytes | None) -> ApiToken | None:
        if stamp is None:
            return None
        with self._lock:
            known = self._tokens.get(digest)
            if known is None:
                return None
            if known[0] != stamp or known[1] < time.monotonic() - KNOWN_TOKEN_SECONDS:
                del self._tokens[digest]
                return None
            self._tokens.move_to_end(digest)
            return known[2]

    def put(self, digest: str, stamp: bytes | None, token: ApiToken) -> None:
        if stamp is None:
            return
        with self._lock:
            self._tokens[digest] = (stamp, time.monotonic(), token)
            self._tokens.move_to_end(digest)
            while len(self._tokens) > KNOWN_TOKENS_MAX:
                self._tokens.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


_known = _KnownTokens()


def auth_changed() -> None:
    """A token, a user or a role changed: every process forgets the tokens it keeps."""
    _known.clear()
    freshness.changed(freshness.AUTH)


IDEMPOTENCY_KEEP = timedelta(hours=24)


def idempotency_records_expire() -> dict[str, int]:
    """Forget Idempotency-Key answers older than a day (a retry comes within minutes)."""
    from studio.models import IdempotencyRecord

    deleted, _ = IdempotencyRecord.objects.filter(
        created_at__lt=timezone.now() - IDEMPOTENCY_KEEP
    ).delete()
    return {"idempotency_expired": deleted}


def rate_limit_hit(key: str, *, limit: int | None = None, window: int = 60) -> int | None:
    """Count one request for ``key`` in the current fixed window (Redis INCR + EXPIRE).

    Returns None while under ``limit`` (settings.STUDIO_API_RATE_LIMIT per minute), else the
    seconds until the window ends (the Retry-After). A Redis outage lets requests through:
    the limit protects the service, it must not take it down."""
    from redis.exceptions import RedisError

    limit = limit or settings.STUDIO_API_RATE_LIMIT
    now = int(time.time())
    window_start = now - now % window
    name = f"studio:ratelimit:{key}:{window_start}"
    try:
        pipe = freshness.redis_client().pipeline()
        pipe.incr(name)
        pipe.expire(name, window + 5)
        count, _ = pipe.execute()
    except RedisError:
        return None
    if int(count) <= limit:
        return None
    return max(1, window_start + window - now)
