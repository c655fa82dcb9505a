"""The one HTTP client of the remote backends (stdlib urllib), with error classification.

Retryable: timeouts, connection errors, 429 (waiting ``Retry-After``) and 5xx — retried here
with exponential backoff up to ``STUDIO_HTTP_RETRIES`` times, then raised as a retryable
BackendError so the item goes back to the queue (until STUDIO_MAX_ATTEMPTS).
Permanent: every other 4xx (400, 401, 403, 404, 413, 422...) — raised at once, not retryable,
with the provider's own message.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import socket
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message

from generation.backends import BackendError

logger = logging.getLogger(__name__)

# Longer waits than this are not slept through inside a job: the item goes back to the queue.
MAX_RETRY_AFTER_S = 120.0


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes

    def json(self, *, what: str):
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            # A proxy's HTML error page or a truncated body: the provider may answer properly
            # on the next try.
            raise BackendError(
                f"{what}: the response is not JSON ({exc}): {self.body[:200]!r}", retryable=True
            ) from exc


def _setting(name: str, default):
    from django.conf import settings

    return getattr(settings, name, default)


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def multipart(fields: dict[str, str]) -> tuple[bytes, str]:
    """A multipart/form-data body of text fields and its Content-Type."""
    boundary = f"studio-{uuid.uuid4().hex}"
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        )
    parts.append(f"--{boundary}--\r\n")
    return "".join(parts).encode(), f"multipart/form-data; boundary={boundary}"


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def provider_message(body: bytes) -> str:
    """The useful part of an error body: Stability's ``errors``, FastAPI's ``detail``, text."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body[:500].decode("utf-8", "replace").strip()
    if isinstance(data, dict):
        for key in ("errors", "detail", "error", "message"):
            value = data.get(key)
            if value:
                if isinstance(value, list):
                    return "; ".join(
                        v.get("msg", json.dumps(v)) if isinstance(v, dict) else str(v)
                        for v in value
                    )
                return value if isinstance(value, str) else json.dumps(value)
    return json.dumps(data)[:500]


def request(
    method: str,
    url: str,
    *,
    what: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
) -> Response:
    """One HTTP call with retries for transient failures; raises a classified BackendError."""
    retries = int(_setting("STUDIO_HTTP_RETRIES", 3))
    backoff = float(_setting("STUDIO_HTTP_BACKOFF_SECONDS", 2.0))
    timeout = timeout or float(_setting("STUDIO_HTTP_TIMEOUT_SECONDS", 300))
    attempt = 0
    while True:
        attempt += 1
        delay = backoff * 2 ** (attempt - 1)
        try:
            req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - configured URL
                return Response(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as exc:
            payload = exc.read() if exc.fp else b""
            message = f"{what}: HTTP {exc.code}: {provider_message(payload) or exc.reason}"
            if exc.code == 429 or exc.code >= 500:
                wait = retry_after_seconds(exc.headers.get("Retry-After"))
                if wait is not None:
                    delay = wait
                error = BackendError(message, retryable=True, status=exc.code)
            else:
                raise BackendError(message, retryable=False, status=exc.code) from exc
        except TimeoutError as exc:
            error = BackendError(f"{what}: timed out after {timeout:g}s", retryable=True)
            error.__cause__ = exc
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError | socket.timeout):
                error = BackendError(f"{what}: timed out after {timeout:g}s", retryable=True)
            else:
                error = BackendError(f"{what}: cannot connect: {reason}", retryable=True)
            error.__cause__ = exc
        if attempt > retries or delay > MAX_RETRY_AFTER_S:
            raise error
        logger.warning("%s; try %d of %d in %.1fs", error, attempt + 1, retries + 1, delay)
        time.sleep(delay)
