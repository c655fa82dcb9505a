"""What every endpoint relies on: who is calling (token or session), scopes, the rate limit,
the body-size cap, RFC 9457 problem responses, cursor pagination and Idempotency-Key."""

from __future__ import annotations

import base64
import binascii
import hashlib
import inspect
import json
import logging
import time
from dataclasses import dataclass, field
from functools import wraps
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from ninja import Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer, SessionAuth
from pydantic import BaseModel, ConfigDict

from studio import tokens
from studio.errors import InputError
from studio.models import IdempotencyRecord

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
PROBLEM_BASE = "https://studio.invalid/problems/"
IDEMPOTENCY_WAIT_SECONDS = 30


# --- Who is calling --------------------------------------------------------------------------


@dataclass
class Caller:
    user: object
    scopes: list[str] = field(default_factory=list)
    token: object | None = None  # the ApiToken, None for the browser session

    def has(self, scope: str) -> bool:
        return tokens.scope_allows(self.user, self.scopes, scope)


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after


def _body_check(request: HttpRequest) -> None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HttpError(400, "Content-Length is not a number") from None
    if length > settings.STUDIO_API_MAX_BODY_BYTES:
        raise HttpError(
            413,
            f"the body is {length:,} bytes; the limit is {settings.STUDIO_API_MAX_BODY_BYTES:,}",
        )


def _admit(request: HttpRequest, caller: Caller, key: str, scope: str) -> Caller:
    retry_after = tokens.rate_limit_hit(key)
    if retry_after is not None:
        raise RateLimited(retry_after)
    if scope and not caller.has(scope):
        raise HttpError(403, f"this needs the {scope} scope")
    _body_check(request)
    return caller


class TokenAuth(HttpBearer):
    """``Authorization: Bearer studio_…``: a personal API token; with ``scope``, a token
    without it is refused (403) before the body is read."""

    def __init__(self, scope: str = "") -> None:
        self.scope = scope
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str):
        found = tokens.token_authenticate(token)
        if found is None:
            return None
        caller = Caller(found.user, list(found.scopes), found)
        return _admit(request, caller, f"t{found.pk}", self.scope)


class BrowserSession(SessionAuth):
    """The logged-in browser: every scope the user's role allows; unsafe methods need the
    CSRF token (ninja's cookie auth checks it)."""

    def __init__(self, scope: str = "") -> None:
        self.scope = scope
        super().__init__()

    def authenticate(self, request: HttpRequest, key):
        user = request.user
        if not user.is_authenticated or not user.is_active:
            return None
        caller = Caller(user, tokens.scopes_allowed(user))
        return _admit(request, caller, f"u{user.pk}", self.scope)


def scoped(scope: str) -> list:
    """An operation's auth: a token or the session, holding ``scope``."""
    return [TokenAuth(scope), BrowserSession(scope)]


def require(request: HttpRequest, scope: str) -> Caller:
    """The caller, if it holds ``scope`` (403 otherwise)."""
    caller: Caller = request.auth
    if not caller.has(scope):
        raise HttpError(403, f"this needs the {scope} scope")
    return caller


# --- Problems (RFC 9457) ---------------------------------------------------------------------


def problem(
    status: int, detail: str = "", *, errors: list[dict] | None = None, kind: str = "", **extra
) -> HttpResponse:
    title = HTTPStatus(status).phrase
    body = {
        "type": PROBLEM_BASE + (kind or title.lower().replace(" ", "-").replace("'", "")),
        "title": title,
        "status": status,
        "detail": detail or title,
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return HttpResponse(json.dumps(body), status=status, content_type=PROBLEM)


def input_errors(exc: InputError, *, where: str = "body") -> list[dict]:
    return [{"loc": [where, e.field] if e.field else [where], "msg": e.message} for e in exc.errors]


def form_errors(form, *, where: str = "body") -> list[dict]:
    return [
        {"loc": [where] if name == "__all__" else [where, name], "msg": str(message)}
        for name, messages in form.errors.items()
        for message in messages
    ]


def review_status(exc: InputError) -> int:
    """A claim that expired or was decided already is a conflict; a missing reason is bad input."""
    return 409 if "" in exc.fields else 422


def install_handlers(api) -> None:
    from review.services.queue import ReviewError

    def on_validation(request, exc: ValidationError):
        errors = [
            {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors
        ]
        return problem(422, "the request does not match the schema", errors=errors)

    def on_review(request, exc: ReviewError):
        return problem(
            review_status(exc), str(exc), errors=input_errors(exc), kind="review-conflict"
        )

    def on_input(request, exc: InputError):
        return problem(422, str(exc), errors=input_errors(exc), kind="invalid-input")

    def on_auth(request, exc: AuthenticationError):
        response = problem(401, "send a valid API token (Authorization: Bearer …) or log in")
        response["WWW-Authenticate"] = 'Bearer realm="studio"'
        return response

    def on_http(request, exc: HttpError):
        return problem(exc.status_code, str(exc))

    def on_rate(request, exc: RateLimited):
        response = problem(
            429, f"too many requests; try again in {exc.retry_after} s", kind="rate-limited"
        )
        response["Retry-After"] = str(exc.retry_after)
        return response

    def on_404(request, exc):
        return problem(404, "no such resource, or not one you may see")

    def on_403(request, exc):
        return problem(403, str(exc) or "your role does not allow this")

    def on_too_big(request, exc):
        return problem(413, "the body is larger than this server accepts")

    def on_other(request, exc):
        log.exception("API error on %s %s", request.method, request.path)
        return problem(500, "an unexpected error; it was logged")

    api.add_exception_handler(ValidationError, on_validation)
    api.add_exception_handler(ReviewError, on_review)
    api.add_exception_handler(InputError, on_input)
    api.add_exception_handler(AuthenticationError, on_auth)
    api.add_exception_handler(HttpError, on_http)
    api.add_exception_handler(RateLimited, on_rate)
    api.add_exception_handler(Http404, on_404)
    api.add_exception_handler(ObjectDoesNotExist, on_404)
    api.add_exception_handler(PermissionDenied, on_403)
    api.add_exception_handler(RequestDataTooBig, on_too_big)
    api.add_exception_handler(Exception, on_other)


# --- Shared schemas ---------------------------------------------------------------------------

MAX_LIMIT = 200


class Strict(Schema):
    """A body or query that refuses unknown fields (a typo is an error, not ignored)."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """A response the endpoint builds as a dict. Plain pydantic: ninja's Schema first wraps
    every nested object in its Django attribute getter, which cost a 48-result search 5 ms
    of CPU (a fifth of the request)."""


class Page(Schema):
    next_cursor: str | None = None


# --- Cursor pagination -----------------------------------------------------------------------


def cursor_encode(pk) -> str:
    return base64.urlsafe_b64encode(str(pk).encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InputError("cursor", "is not a cursor this API gave out") from None


def keyset_page(queryset, *, order: tuple[str, ...], cursor: str | None, limit: int):
    """One page of ``queryset`` in ``order`` (all ascending or all descending, ending with the
    primary key) after the row the cursor names; returns (rows, next cursor or None).

    The cursor names the last row's primary key; its sort values are read back from the
    database, so a cursor carries no data a client could forge into another order."""
    descending = order[0].startswith("-")
    fields = [name.lstrip("-") for name in order]
    queryset = queryset.order_by(*order)
    if cursor:
        pk = cursor_decode(cursor)
        try:
            last = queryset.model.objects.filter(pk=pk).values(*fields).first()
        except (ValueError, TypeError, DjangoValidationError):  # not an id of this kind
            last = None
        if last is None:
            raise InputError("cursor", "is not a cursor this API gave out")
        after = Q()
        op = "lt" if descending else "gt"
        for i, name in enumerate(fields):
            step = Q(**{f"{name}__{op}": last[name]})
            for earlier in fields[:i]:
                step &= Q(**{earlier: last[earlier]})
            after |= step
        queryset = queryset.filter(after)
    rows = list(queryset[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (cursor_encode(rows[-1].pk) if more and rows else None)


# --- Idempotency-Key -------------------------------------------------------------------------

# The header in the OpenAPI document: ``openapi_extra=IDEMPOTENCY_OPENAPI`` on each route that
# ``idempotent`` wraps (ninja adds these parameters to the operation's own).
IDEMPOTENCY_OPENAPI = {
    "parameters": [
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": False,
            "schema": {"type": "string", "maxLength": 200},
            "description": "Any unique string (e.g. a UUID) per logical request: a retry with "
            "the same key and body returns the first answer (with `Idempotent-Replayed: true`), "
            "also while the first is still running; the same key with another body is a 422.",
        }
    ]
}


def _json_response(status: int, data, content_type: str = "application/json") -> HttpResponse:
    return HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder), status=status, content_type=content_type
    )


def idempotent(view):
    """A creating POST: with an ``Idempotency-Key`` header, the first answer is stored and
    every retry with the same key returns it, also while the first is still running (the
    unique constraint admits one; the others wait for its answer). The same key with a
    different body is refused (422). The view returns (status, JSON-able data)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key", "")
        if not key:
            status, data = _run(view, request, args, kwargs)
            return _json_response(status, data, PROBLEM if status >= 400 else "application/json")
        if len(key) > 200:
            raise InputError("Idempotency-Key", "use at most 200 characters")
        caller: Caller = request.auth
        digest = _request_digest(request)
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    user=caller.user, key=key, path=request.path, request_hash=digest
                )
        except IntegrityError:
            return _replay(caller.user, key, request.path, digest)
        try:
            status, data = _run(view, request, args, kwargs)
        except BaseException:
            record.delete()  # nothing was answered: a retry may run it
            raise
        data = _storable(json.loads(json.dumps(data, cls=DjangoJSONEncoder)))
        IdempotencyRecord.objects.filter(pk=record.pk).update(status_code=status, response=data)
        return _json_response(status, data, PROBLEM if status >= 400 else "application/json")

    # ninja reads the parameters from the signature; evaluate the view's annotations in its
    # own module (this wrapper's globals are not the view's).
    wrapped.__signature__ = inspect.signature(view, eval_str=True)
    return wrapped


def _storable(data):
    """The answer as PostgreSQL's jsonb stores it: a NUL or a lone surrogate (echoed from a
    bad request in an error message) becomes U+FFFD."""
    if isinstance(data, str):
        return data.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
    if isinstance(data, list):
        return [_storable(v) for v in data]
    if isinstance(data, dict):
        return {_storable(k): _storable(v) for k, v in data.items()}
    return data


def _request_digest(request) -> str:
    """What makes two requests the same: the JSON body, or a multipart form's fields and
    files (not its random boundary)."""
    digest = hashlib.sha256(request.method.encode())
    if request.content_type == "multipart/form-data":
        try:
            fields = sorted(request.POST.lists())
        except MultiPartParserError:
            raise InputError("body", "is not a valid multipart form") from None
        for name, values in fields:
            digest.update(json.dumps([name, values]).encode())
        for name, upload in sorted(request.FILES.items()):
            upload.seek(0)
            digest.update(name.encode() + b"\0" + upload.read())
            upload.seek(0)
    else:
        digest.update(request.body)
    return digest.hexdigest()


def _run(view, request, args, kwargs) -> tuple[int, object]:
    try:
        return view(request, *args, **kwargs)
    except InputError as exc:
        from review.services.queue import ReviewError

        status = review_status(exc) if isinstance(exc, ReviewError) else 422
        body = json.loads(problem(status, str(exc), errors=input_errors(exc)).content)
        return status, body


def _replay(user, key: str, path: str, digest: str) -> HttpResponse:
    deadline = time.monotonic() + IDEMPOTENCY_WAIT_SECONDS
    while True:
        record = IdempotencyRecord.objects.filter(user=user, key=key, path=path).first()
        if record is None:  # the first request failed and let go of the key
            return problem(409, "the first request with this key failed; send it again")
        if record.request_hash != digest:
            return problem(
                422,
                "this Idempotency-Key was used with a different request",
                errors=[{"loc": ["header", "Idempotency-Key"], "msg": "already used"}],
            )
        if record.status_code is not None:
            content_type = PROBLEM if record.status_code >= 400 else "application/json"
            response = _json_response(record.status_code, record.response, content_type)
            response["Idempotent-Replayed"] = "true"
            return response
        if time.monotonic() > deadline:
            return problem(409, "the first request with this key is still running")
        time.sleep(0.05)
