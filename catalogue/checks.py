"""System checks of the catalogue app: the C2PA signing credentials.

With STUDIO_C2PA on, `manage.py check` (and every command that runs the checks: migrate,
runserver, up) fails with one error naming the setting and the problem when the configured
certificate or key is missing, unreadable, not PEM, not a pair, expired, or refused by c2pa
(the check signs and validates an 8x8 test image). A worker that starts without the checks
finds the same problem on its first file, logs it once and delivers unsigned
(catalogue.delivery.signing), never failing image by image.

On the embedded default (no certificate configured) the check builds nothing: the local CA is
made on first use; only an unreadable one already there is an error.
"""

from __future__ import annotations

from django.core.checks import Error, register

HINT = (
    "Point STUDIO_C2PA_CERT_FILE at the PEM certificate chain (signing certificate first) and "
    "STUDIO_C2PA_KEY_FILE at its unencrypted PKCS#8 PEM key; unset both to sign with the "
    "local CA under STUDIO_C2PA_DIR, or set STUDIO_C2PA=off to deliver unsigned files."
)


@register()
def c2pa_credentials_check(app_configs=None, **kwargs) -> list:
    from django.conf import settings

    from catalogue.delivery import signing

    if not signing.signing_enabled():
        return []
    if not any(signing._configured()):
        directory = settings.STUDIO_C2PA_DIR
        if not (directory / signing.CERT_FILE).exists():
            return []  # made on first use, like the secret key
    try:
        signer = signing.build_signer()
    except signing.SigningError as exc:
        return [
            Error(
                f"C2PA signing cannot start: {exc.setting}: {exc.message}.",
                hint=HINT,
                id="catalogue.E101",
            )
        ]
    signer.close()
    return []
