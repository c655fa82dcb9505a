"""Request/response chrome: a real page for 405 responses, quiet logging of 403s, and the
Content-Security-Policy header."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme


class MethodNotAllowedPageMiddleware:
    """Render templates/405.html into the empty body of an HttpResponseNotAllowed.

    Django has no handler405: `require_POST` and class-based views answer a GET with an empty
    405, which a browser shows as a blank or error page. The response object is kept (not
    replaced) so its Allow header stays and Django does not log it a second time.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # A view that wrote its own body (an API answer, say) keeps it.
        if isinstance(response, HttpResponseNotAllowed) and not response.content:
            allowed = [m.strip() for m in response.get("Allow", "").split(",") if m.strip()]
            response.content = render_to_string(
                "405.html",
                {"allowed_methods": allowed, "back_url": _back_url(request)},
                request=request,
            )
            response["Content-Type"] = "text/html; charset=utf-8"
        return response


def _back_url(request: HttpRequest) -> str:
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return referer
    return reverse("generation:dashboard")


def quiet_permission_denied(record: logging.LogRecord) -> bool:
    """Logging filter for django.request: a 403 is a routine event, not a crash.

    Django logs a PermissionDenied with its traceback (exc_info); keep one WARNING line and
    the denial's reason instead.
    """
    if getattr(record, "status_code", None) == 403 and record.exc_info:
        reason = str(record.exc_info[1] or "")
        record.exc_info = None
        record.exc_text = None
        if reason and isinstance(record.args, tuple):
            record.msg = f"{record.msg} (%s)"
            record.args = (*record.args, reason)
        record.levelno = logging.WARNING
        record.levelname = logging.getLevelName(logging.WARNING)
    return True


# Scripts and style sheets come only from our own static files: no inline <script>, no
# event-handler attributes, no eval. Inline style *attributes* are allowed (progress bars and
# detection boxes are sized with style="width: …%"); they cannot run code. htmx's own
# indicator <style> is turned off in base.html (htmx-config meta) and lives in studio.css.
CSP_DIRECTIVES: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "style-src-attr": ["'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "media-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# The Django admin and django-rq's dashboard (staff only) ship inline scripts and styles.
CSP_ADMIN_RELAXED = {
    "script-src": ["'self'", "'unsafe-inline'"],
    "style-src": ["'self'", "'unsafe-inline'"],
}


def media_origins() -> list[str]:
    """Where images are fetched from besides 'self': with S3 storage a download is a redirect
    to a signed URL on the bucket's endpoint, which <img> follows under img-src."""
    default = settings.STORAGES.get("default", {})
    if not str(default.get("BACKEND", "")).endswith("S3Storage"):
        return []
    options = default.get("OPTIONS", {}) or {}
    endpoint = options.get("endpoint_url")
    if endpoint:
        parts = urlsplit(endpoint)
        return [f"{parts.scheme}://{parts.netloc}"]
    return ["https://*.amazonaws.com"]


def content_security_policy(*, relaxed: bool = False) -> str:
    directives = {name: list(sources) for name, sources in CSP_DIRECTIVES.items()}
    extra = media_origins()
    for name in ("img-src", "media-src", "connect-src", "form-action"):
        directives[name] += extra
    if relaxed:
        directives.update(CSP_ADMIN_RELAXED)
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


class ContentSecurityPolicyMiddleware:
    """Send a Content-Security-Policy on every response that has none yet (Django 5.2 has no
    built-in CSP). The policy is built once, at start-up, from settings."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = content_security_policy()
        self.relaxed_policy = content_security_policy(relaxed=True)
        self.relaxed_prefix = "/admin/"

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            relaxed = request.path_info.startswith(self.relaxed_prefix)
            response["Content-Security-Policy"] = self.relaxed_policy if relaxed else self.policy
        return response
