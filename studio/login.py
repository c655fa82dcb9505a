"""Sign-in with throttling: after STUDIO_LOGIN_LIMIT failures from one IP or for one username
within STUDIO_LOGIN_WINDOW_SECONDS, further attempts are refused (429) without checking the
password, until the window ends. Counters live in Redis (shared by every web process); every
failed or refused attempt is also a LoginAttempt row, the audit trail.

Both the site's login page and the Django admin's use these forms. A Redis outage lets
sign-ins through (with the audit rows still written): the limit slows guessing, it must not
lock everyone out.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from studio.models import LoginAttempt

logger = logging.getLogger(__name__)
THROTTLED = "throttled"


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or with STUDIO_PROXY_COUNT proxies in front the address the outermost of
    them saw (X-Forwarded-For, counted from the right: a client can prepend anything)."""
    address = request.META.get("REMOTE_ADDR", "")
    proxies = settings.STUDIO_PROXY_COUNT
    if proxies:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= proxies:
            address = hops[-proxies]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _keys(ip: str | None, username: str) -> list[str]:
    # Hashed: usernames typed by strangers (any length, any bytes) never become key names.
    name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    keys = [f"studio:login:user:{name}"]
    if ip:
        keys.append(f"studio:login:ip:{ip}")
    return keys


def _redis():
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retries with backoff: a sign-in must not wait seconds for a Redis that is down.
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )


def retry_after(ip: str | None, username: str) -> int | None:
    """Seconds until sign-in is possible again, or None when it is possible now."""
    from redis.exceptions import RedisError

    keys = _keys(ip, username)
    try:
        pipe = _redis().pipeline()
        for key in keys:
            pipe.get(key)
            pipe.ttl(key)
        answers = pipe.execute()
    except RedisError as exc:
        logger.warning("login throttle unavailable (Redis): %s", exc)
        return None
    waits = [
        max(1, int(ttl))
        for count, ttl in zip(answers[::2], answers[1::2], strict=True)
        if count is not None and int(count) >= settings.STUDIO_LOGIN_LIMIT
    ]
    return max(waits) if waits else None


def failure_count(ip: str | None, username: str) -> None:
    """Count one failure against the IP and the username; the window starts at the first."""
    from redis.exceptions import RedisError

    try:
        pipe = _redis().pipeline()
        for key in _keys(ip, username):
            pipe.incr(key)
            pipe.expire(key, settings.STUDIO_LOGIN_WINDOW_SECONDS, nx=True)
        pipe.execute()
    except RedisError as exc:
        logger.warning("login throttle unavailable (Redis): %s", exc)


def failures_clear(username: str) -> None:
    """A successful sign-in forgives the username's failures (not the IP's)."""
    from redis.exceptions import RedisError

    try:
        _redis().delete(_keys(None, username)[0])
    except RedisError:
        pass


def login_attempt_record(*, request: HttpRequest | None, username: str, outcome: str) -> None:
    meta = request.META if request is not None else {}
    LoginAttempt.objects.create(
        username=username[:150],
        ip=client_ip(request) if request is not None else None,
        outcome=outcome,
        path=(request.path if request is not None else "")[:200],
        user_agent=str(meta.get("HTTP_USER_AGENT", ""))[:300],
    )


class ThrottledLoginMixin:
    """For an AuthenticationForm: refuse while throttled, count and record each failure."""

    request: HttpRequest | None
    cleaned_data: dict

    def clean(self):  # type: ignore[no-untyped-def]
        username = str(self.cleaned_data.get("username") or "")
        ip = client_ip(self.request) if self.request is not None else None
        wait = retry_after(ip, username)
        self.throttle_wait = wait
        if wait is not None:
            login_attempt_record(
                request=self.request, username=username, outcome=LoginAttempt.Outcome.REFUSED
            )
            minutes = max(1, math.ceil(wait / 60))
            raise ValidationError(
                "Too many failed sign-in attempts. For your account's safety, signing in is "
                f"paused: try again in {minutes} minute{'s' if minutes != 1 else ''}.",
                code=THROTTLED,
            )
        try:
            cleaned = super().clean()  # type: ignore[misc]
        except ValidationError:
            failure_count(ip, username)
            login_attempt_record(
                request=self.request, username=username, outcome=LoginAttempt.Outcome.FAILED
            )
            raise
        failures_clear(username)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass


class LoginView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form) -> HttpResponse:  # type: ignore[no-untyped-def]
        response = super().form_invalid(form)
        if form.has_error("__all__", THROTTLED):
            response.status_code = 429
            response["Retry-After"] = str(getattr(form, "throttle_wait", None) or 60)
        return response
