"""Typed readers for settings that come from the environment.

Every reader raises ImproperlyConfigured naming the variable when its value is bad, so a
misconfigured deployment fails at start rather than at the first request.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    """The value of NAME, or the contents of the file named by NAME_FILE (for secrets)."""
    file_var = os.environ.get(f"{name}_FILE")
    if file_var:
        try:
            return Path(file_var).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {file_var!r}: {exc}") from exc
    return os.environ.get(name)


def env_str(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}: expected true/false, got {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}: must be at least {minimum}, got {number}")
    return number


def env_float(name: str, default: float) -> float:
    value = _raw(name)
    if value is None or value.strip() == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a number, got {value!r}") from None


def env_decimal(name: str, default: str) -> Decimal:
    value = _raw(name)
    try:
        return Decimal(default if value is None or value.strip() == "" else value)
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name}: expected a decimal number, got {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [part.strip() for part in value.split(",") if part.strip()]


def database_from_url(name: str, url: str) -> dict:
    """Django DATABASES entry from postgres://user:pass@host:port/db?sslmode=...

    A host that starts with %2F (or a ``host`` query parameter) is a Unix socket directory.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"{name}: Studio needs PostgreSQL (its catalogue uses full-text search); "
            f"got scheme {parts.scheme!r}"
        )
    db_name = unquote(parts.path.lstrip("/"))
    if not db_name:
        raise ImproperlyConfigured(f"{name}: the URL names no database")
    options: dict[str, str] = {}
    # Not parts.hostname: it lower-cases, which breaks a %2F-quoted socket directory.
    hostport = parts.netloc.rsplit("@", 1)[-1]
    host = hostport.rsplit(":", 1)[0] if re.search(r":\d*$", hostport) else hostport
    host = unquote(host.strip("[]"))
    for pair in filter(None, parts.query.split("&")):
        key, _, value = pair.partition("=")
        if key == "host":
            host = unquote(value)
        else:
            options[key] = unquote(value)
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"{name}: bad port in URL") from None
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": db_name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def check_redis_url(name: str, url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(f"{name}: expected a redis://, rediss:// or unix:// URL")
    return url


_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_S3_REGION = re.compile(r"^[a-z0-9-]{2,40}$")
# SigV4 presigned URLs live at most a week.
S3_URL_SECONDS_MAX = 7 * 24 * 3600


def s3_options(bucket: str) -> dict:
    """django-storages S3Storage OPTIONS from STUDIO_S3_* variables: private objects, signed
    short-lived URLs, never overwriting a file. Raises ImproperlyConfigured naming the
    variable whose value is bad."""
    if not _S3_BUCKET.match(bucket):
        raise ImproperlyConfigured(
            "STUDIO_S3_BUCKET: expected an S3 bucket name (3-63 lower-case letters, digits, "
            f"dots and hyphens), got {bucket!r}"
        )
    options: dict = {
        "bucket_name": bucket,
        "querystring_auth": True,
        "default_acl": None,  # private: the bucket's own policy, never public-read
        "file_overwrite": False,
        # SigV4: SigV2 URLs are deprecated on AWS and refused by some S3-compatible servers.
        "signature_version": "s3v4",
    }
    endpoint = (env_str("STUDIO_S3_ENDPOINT_URL", "") or "").strip()
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ImproperlyConfigured(
                f"STUDIO_S3_ENDPOINT_URL: expected an http:// or https:// URL, got {endpoint!r}"
            )
        try:
            parts.port  # noqa: B018 - a bad port raises here, not at the first upload
        except ValueError:
            raise ImproperlyConfigured(
                f"STUDIO_S3_ENDPOINT_URL: bad port in {endpoint!r}"
            ) from None
        options["endpoint_url"] = endpoint
    region = (env_str("STUDIO_S3_REGION", "") or "").strip()
    if region:
        if not _S3_REGION.match(region):
            raise ImproperlyConfigured(f"STUDIO_S3_REGION: expected e.g. eu-west-1, got {region!r}")
        options["region_name"] = region
    access_key = (env_str("STUDIO_S3_ACCESS_KEY_ID", "") or "").strip()
    secret_key = (env_str("STUDIO_S3_SECRET_ACCESS_KEY", "") or "").strip()
    # Neither: boto3's own chain (instance role, AWS_* variables, ~/.aws) finds them.
    if bool(access_key) != bool(secret_key):
        missing = "STUDIO_S3_SECRET_ACCESS_KEY" if access_key else "STUDIO_S3_ACCESS_KEY_ID"
        raise ImproperlyConfigured(
            f"{missing}: set both STUDIO_S3_ACCESS_KEY_ID and STUDIO_S3_SECRET_ACCESS_KEY "
            "(or _FILE), or neither"
        )
    if access_key:
        options["access_key"] = access_key
        options["secret_key"] = secret_key
    prefix = (env_str("STUDIO_S3_PREFIX", "") or "").strip().strip("/")
    if prefix:
        if any(part in ("", ".", "..") for part in prefix.split("/")) or "\\" in prefix:
            raise ImproperlyConfigured(
                f"STUDIO_S3_PREFIX: expected a key prefix like 'studio/media', got {prefix!r}"
            )
        options["location"] = prefix
    style = (env_str("STUDIO_S3_ADDRESSING_STYLE", "") or "").strip().lower()
    if style:
        if style not in {"auto", "path", "virtual"}:
            raise ImproperlyConfigured(
                f"STUDIO_S3_ADDRESSING_STYLE: expected auto, path or virtual, got {style!r}"
            )
        options["addressing_style"] = style
    seconds = env_int("STUDIO_S3_URL_SECONDS", 300, minimum=1)
    if seconds > S3_URL_SECONDS_MAX:
        raise ImproperlyConfigured(
            f"STUDIO_S3_URL_SECONDS: at most {S3_URL_SECONDS_MAX} (a week), got {seconds}"
        )
    options["querystring_expire"] = seconds
    return options
