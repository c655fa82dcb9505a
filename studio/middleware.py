"""Request/response chrome: a real page for 405 responses, quiet logging of 403s."""

from __future__ import annotations

import logging
from collections.abc import Callable

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
