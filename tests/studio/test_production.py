"""Production shape: `check --deploy`, the security headers and CSP, the web server `up` runs."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from studio.management.commands.up import web_command
from studio.middleware import content_security_policy

REPO = Path(__file__).resolve().parents[2]


def _check_deploy(**extra: str) -> subprocess.CompletedProcess[str]:
    # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process (Playwright's loop);
    # a deployment never has it, and check --deploy rightly refuses it (async.E001).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STUDIO_TLS", "SECURE_")) and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    env.update(DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50), **extra)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_production_settings():
    result = _check_deploy(STUDIO_TLS="true")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout + result.stderr


def test_check_deploy_names_what_is_missing_when_tls_is_off():
    result = _check_deploy()
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr


def test_tls_turns_on_hsts_the_redirect_and_secure_cookies():
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_INCLUDE_SUBDOMAINS)"
    )
    env = dict(os.environ, STUDIO_TLS="true", DJANGO_SETTINGS_MODULE="studio.settings")
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split() == ["31536000", "True", "True", "True", "True"], out.stderr


@pytest.mark.django_db
def test_every_page_has_the_security_headers_and_a_strict_policy(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["img-src"] == "'self' data: blob:"
    assert directives["object-src"] == "'none'"
    assert "unsafe-eval" not in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_the_staff_admin_alone_may_run_its_inline_scripts(client, admin_user):
    client.force_login(admin_user)
    policy = client.get("/admin/")["Content-Security-Policy"]
    assert "script-src 'self' 'unsafe-inline'" in policy
    assert "frame-ancestors 'none'" in policy


def test_with_s3_storage_images_may_come_from_the_bucket_endpoint(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": "b", "endpoint_url": "https://s3.example.com:9000/x"},
        },
    }
    policy = content_security_policy()
    assert "img-src 'self' data: blob: https://s3.example.com:9000;" in policy
    assert "script-src 'self';" in policy


# Inline code the policy would block: a <script> with a body, or an on* handler attribute.
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/(?:ld\+)?json)[^>]*>")
_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


def test_no_template_of_the_site_has_inline_scripts_or_event_handlers():
    found = []
    for path in sorted((REPO / "templates").rglob("*.html")):
        if "admin" in path.relative_to(REPO / "templates").parts:
            continue
        text = path.read_text()
        found += [f"{path.name}: {m.group(0)}" for m in _INLINE_SCRIPT.finditer(text)]
        found += [f"{path.name}: {m.group(0)[:60]}" for m in _HANDLER.finditer(text)]
    assert found == []


def test_the_inline_script_check_finds_one():
    assert _INLINE_SCRIPT.search("<script>alert(1)</script>")
    assert _HANDLER.search('<button onclick="go()">')
    assert not _INLINE_SCRIPT.search('<script src="/static/a.js" defer></script>')
    assert not _INLINE_SCRIPT.search('<script type="application/json" id="d">')


def test_up_serves_with_gunicorn_when_debug_is_off(settings):
    settings.DEBUG = False
    settings.STUDIO_WEB_WORKERS = 3
    settings.STUDIO_WEB_THREADS = 6
    command = web_command("0.0.0.0", 8123)
    assert command[1:4] == ["-m", "gunicorn", "studio.wsgi:application"]
    assert command[command.index("--bind") + 1] == "0.0.0.0:8123"
    assert command[command.index("--workers") + 1] == "3"
    assert command[command.index("--worker-class") + 1] == "gthread"
    assert command[command.index("--threads") + 1] == "6"
    assert "runserver" not in command


def test_up_uses_the_development_server_only_with_debug_on(settings):
    settings.DEBUG = True
    command = web_command("::1", 8000)
    assert command[-3:] == ["runserver", "--noreload", "[::1]:8000"]
