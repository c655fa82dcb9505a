"""Shared storage on S3: against moto's standalone server on 127.0.0.1 (one per session), with
Django's default storage switched to django-storages' S3Storage for the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from catalogue.delivery.files import file_response, signs_urls
from studio.env import s3_options
from tests.conftest import logged_in, make_user

BUCKET = "studio-test"
KEY_ID, SECRET = "test-key-id", "test-secret-key"
S3 = "storages.backends.s3.S3Storage"


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server in a thread of this process, on a free port, with one bucket."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )
    client.create_bucket(Bucket=BUCKET)
    yield {"endpoint": endpoint, "client": client}
    server.stop()


def _s3_env(monkeypatch, endpoint: str, **extra: str) -> None:
    values = {
        "STUDIO_S3_BUCKET": BUCKET,
        "STUDIO_S3_ENDPOINT_URL": endpoint,
        "STUDIO_S3_REGION": "us-east-1",
        "STUDIO_S3_ACCESS_KEY_ID": KEY_ID,
        "STUDIO_S3_SECRET_ACCESS_KEY": SECRET,
        **extra,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3(settings, monkeypatch, s3_server):
    """The default storage is S3 for this test, configured the way settings.py does it from
    STUDIO_S3_* variables, under a prefix of its own so tests share the bucket safely.
    Assigning STORAGES sends setting_changed, which empties Django's storage cache."""
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    _s3_env(monkeypatch, s3_server["endpoint"], STUDIO_S3_PREFIX=prefix)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": S3, "OPTIONS": s3_options(BUCKET)},
    }
    assert signs_urls()
    return {**s3_server, "prefix": prefix}


def _object(s3, name: str) -> bytes:
    key = f"{s3['prefix']}/{name}"
    return s3["client"].get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _fetch(url: str):
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read(), answer.headers


@pytest.fixture
def s3_asset(s3, campaign):
    """An approved item published while S3 is the storage: master and thumbnail in the bucket."""
    from catalogue.services import asset_publish
    from tests.conftest import route_items

    (item,) = route_items(campaign, to="approved", count=1)
    return asset_publish(item_id=item.pk)


def test_a_published_asset_has_its_master_and_thumbnail_in_the_bucket(s3, s3_asset):
    assert _object(s3, s3_asset.image.name) == s3_asset.item.image.open("rb").read()
    assert _object(s3, s3_asset.thumbnail.name)[:4] == b"RIFF"  # WebP
    assert not default_storage.exists(f"{s3_asset.image.name}.missing")


def test_download_redirects_to_a_short_lived_signed_url_that_serves_the_master(
    s3, s3_asset, creative_client
):
    from catalogue.services import asset_download_name

    response = creative_client.get(reverse("catalogue:asset_download", args=[s3_asset.pk]))

    assert response.status_code == 302
    assert response["Cache-Control"] == "private, no-store"
    url = response["Location"]
    assert url.startswith(s3["endpoint"])
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["300"]
    assert query["X-Amz-Signature"][0]
    body, headers = _fetch(url)
    assert body == _object(s3, s3_asset.image.name)
    assert headers["Content-Disposition"] == (
        f'attachment; filename="{asset_download_name(s3_asset)}"'
    )


def test_the_signed_url_lifetime_comes_from_the_setting(
    settings, monkeypatch, s3, s3_asset, creative_client
):
    _s3_env(monkeypatch, s3["endpoint"], STUDIO_S3_PREFIX=s3["prefix"], STUDIO_S3_URL_SECONDS="60")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": S3, "OPTIONS": s3_options(BUCKET)},
    }

    response = creative_client.get(reverse("catalogue:asset_download", args=[s3_asset.pk]))

    assert parse_qs(urlsplit(response["Location"]).query)["X-Amz-Expires"] == ["60"]


def test_a_withdrawn_asset_is_refused_before_any_url_is_made(s3, s3_asset, client, admin_user):
    from catalogue.services import asset_withdraw

    asset_withdraw(asset=s3_asset, user=admin_user, note="legal")
    creative = logged_in(client, make_user("cleo", "creative"))
    url = reverse("catalogue:asset_download", args=[s3_asset.pk])
    thumb = reverse("catalogue:media", args=[s3_asset.thumbnail.name])

    for refused in (creative.get(url), creative.get(thumb)):
        assert refused.status_code == 403
        assert "Location" not in refused
        assert b"X-Amz" not in refused.content
        assert s3["endpoint"].encode() not in refused.content

    admin = logged_in(client, admin_user)
    assert admin.get(url).status_code == 302


def test_the_media_view_redirects_to_the_thumbnail_on_s3(s3, s3_asset, reviewer_client):
    response = reviewer_client.get(reverse("catalogue:media", args=[s3_asset.thumbnail.name]))

    assert response.status_code == 302
    assert response["Cache-Control"] == "private, no-store"
    body, headers = _fetch(response["Location"])
    assert body == _object(s3, s3_asset.thumbnail.name)
    assert headers["Content-Type"] == "image/webp"
    assert "attachment" not in headers.get("Content-Disposition", "")


def test_a_file_missing_from_the_bucket_is_a_404_without_a_url(s3, s3_asset, creative_client):
    default_storage.delete(s3_asset.image.name)

    response = creative_client.get(reverse("catalogue:asset_download", args=[s3_asset.pk]))

    assert response.status_code == 404
    assert "Location" not in response


def test_a_rendition_file_on_s3_downloads_through_the_same_response(s3, s3_asset):
    from catalogue.models import Rendition

    data = b"\xff\xd8\xff rendition bytes"
    name = default_storage.save(f"renditions/{s3_asset.pk}/instagram.jpg", ContentFile(data))
    rendition = Rendition.objects.create(
        asset=s3_asset,
        channel="instagram",
        width=1080,
        height=1080,
        format="jpeg",
        file=name,
        bytes=len(data),
        sha256="0" * 64,
        fingerprint="test",
    )

    response = file_response(rendition.file.name, download_name="SH-1001-instagram.jpg")

    assert response.status_code == 302
    body, headers = _fetch(response["Location"])
    assert body == data
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["Content-Disposition"] == 'attachment; filename="SH-1001-instagram.jpg"'


def test_saving_under_a_taken_name_never_overwrites(s3):
    first = default_storage.save("items/same.png", ContentFile(b"one"))
    second = default_storage.save("items/same.png", ContentFile(b"two"))

    assert first != second
    assert _object(s3, first) == b"one"


def test_the_filesystem_storage_still_streams_the_file(asset, creative_client):
    assert not signs_urls()

    response = creative_client.get(reverse("catalogue:asset_download", args=[asset.pk]))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == asset.image.open("rb").read()


@pytest.mark.parametrize(
    ("name", "value", "bucket"),
    [
        ("STUDIO_S3_BUCKET", "", "Not_A_Bucket"),
        ("STUDIO_S3_ENDPOINT_URL", "minio:9000", "studio"),
        ("STUDIO_S3_REGION", "EU West", "studio"),
        ("STUDIO_S3_PREFIX", "media/../up", "studio"),
        ("STUDIO_S3_URL_SECONDS", "soon", "studio"),
        ("STUDIO_S3_URL_SECONDS", "0", "studio"),
        ("STUDIO_S3_URL_SECONDS", "9999999", "studio"),
        ("STUDIO_S3_ADDRESSING_STYLE", "sideways", "studio"),
        ("STUDIO_S3_SECRET_ACCESS_KEY", "", "studio"),
    ],
)
def test_a_bad_s3_setting_is_refused_naming_its_variable(monkeypatch, name, value, bucket):
    monkeypatch.setenv("STUDIO_S3_ACCESS_KEY_ID", "only-the-id")
    monkeypatch.setenv("STUDIO_S3_SECRET_ACCESS_KEY", "and-its-secret")
    monkeypatch.setenv(name, value)

    with pytest.raises(ImproperlyConfigured, match=f"^{name}:"):
        s3_options(bucket)


def test_s3_settings_are_private_signed_and_never_overwrite(monkeypatch, tmp_path):
    secret = tmp_path / "s3_secret"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("STUDIO_S3_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("STUDIO_S3_SECRET_ACCESS_KEY_FILE", str(secret))
    monkeypatch.setenv("STUDIO_S3_PREFIX", "/studio/media/")

    options = s3_options("studio")

    assert options["secret_key"] == "from-a-file"
    assert options["location"] == "studio/media"
    assert options["querystring_auth"] is True
    assert options["querystring_expire"] == 300
    assert options["default_acl"] is None
    assert options["file_overwrite"] is False


def _settings_storages(**env: str) -> subprocess.CompletedProcess[str]:
    """studio.settings' STORAGES in a fresh interpreter (settings run once per process)."""
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STUDIO_S3_")},
        "DEBUG": "false",
        "SECRET_KEY": "a-key-for-this-test",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/studio",
        "REDIS_URL": "redis://127.0.0.1:6379/13",
        **env,
    }
    environ.pop("SECRET_KEY_FILE", None)
    code = "import json, studio.settings as s; print(json.dumps(s.STORAGES))"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_use_s3_when_a_bucket_is_set_and_keep_static_files_local():
    result = _settings_storages(
        STUDIO_S3_BUCKET="studio-media",
        STUDIO_S3_ENDPOINT_URL="http://minio:9000",
        STUDIO_S3_URL_SECONDS="120",
    )

    assert result.returncode == 0, result.stderr
    storages = json.loads(result.stdout)
    assert storages["default"]["BACKEND"] == S3
    assert storages["default"]["OPTIONS"]["bucket_name"] == "studio-media"
    assert storages["default"]["OPTIONS"]["querystring_expire"] == 120
    assert storages["staticfiles"]["BACKEND"].startswith("whitenoise.")
    without = json.loads(_settings_storages().stdout)
    assert without["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"


def test_settings_refuse_to_start_with_a_bad_bucket_name():
    result = _settings_storages(STUDIO_S3_BUCKET="My Bucket")

    assert result.returncode != 0
    assert "STUDIO_S3_BUCKET: expected an S3 bucket name" in result.stderr
