"""Serving stored files after the caller's permission check: streamed from the filesystem, or
(on S3) a redirect to a short-lived signed URL."""

from __future__ import annotations

import mimetypes

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import Storage, default_storage
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header

# A signed URL is a bearer token for its lifetime: neither the browser nor a proxy keeps it.
REDIRECT_CACHE_CONTROL = "private, no-store"


def signs_urls(storage: Storage | None = None) -> bool:
    """Whether the storage hands out signed URLs (S3 through django-storages) rather than
    being read and streamed by the web process."""
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:  # django-storages (or boto3) not installed: filesystem only
        return False
    return isinstance(storage if storage is not None else default_storage, S3Storage)


def file_response(name: str, *, download_name: str | None = None) -> HttpResponseBase:
    """The stored file ``name`` as a response; as an attachment named ``download_name`` when
    given. Call it only after the permission check. 404 when the file is missing.

    On the filesystem the file is streamed; on S3 the answer is a 302 to a signed URL that
    expires after STUDIO_S3_URL_SECONDS, with the attachment name (or the content type) set
    through the URL's response parameters, since the bytes never pass through here."""
    try:
        if not name or not default_storage.exists(name):
            raise Http404("No such file.")
        if signs_urls():
            return _signed_redirect(name, download_name=download_name)
        handle = default_storage.open(name, "rb")
    except (OSError, SuspiciousFileOperation) as exc:
        raise Http404("No such file.") from exc
    if download_name:
        # FileResponse writes the name as an RFC 6266 / 5987 header, escaped for any name.
        return FileResponse(handle, as_attachment=True, filename=download_name)
    content_type, _ = mimetypes.guess_type(name)
    response = FileResponse(handle, content_type=content_type or "application/octet-stream")
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _signed_redirect(name: str, *, download_name: str | None) -> HttpResponseRedirect:
    content_type, _ = mimetypes.guess_type(download_name or name)
    parameters = {"ResponseContentType": content_type or "application/octet-stream"}
    if download_name:
        parameters["ResponseContentDisposition"] = content_disposition_header(True, download_name)
    else:
        parameters["ResponseCacheControl"] = "private, max-age=300"
    url = default_storage.url(name, parameters=parameters)
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = REDIRECT_CACHE_CONTROL
    return response
