"""Content Credentials: a signed C2PA manifest in every delivered file (c2pa-python 0.38.1).

Settings (studio/settings.py, README "Signing"):
- ``STUDIO_C2PA`` (default on): sign delivered files at all.
- ``STUDIO_C2PA_CERT_FILE`` / ``STUDIO_C2PA_KEY_FILE``: the organisation's PEM certificate
  chain (signing certificate first) and its private key (PKCS#8 PEM). Both or neither. Or the
  PEM text itself in ``STUDIO_C2PA_CERT`` / ``STUDIO_C2PA_KEY``.
- ``STUDIO_C2PA_TSA_URL``: an RFC 3161 time-stamp authority; empty signs offline.
- Neither file set: a local CA and a signing certificate are made once under
  ``STUDIO_C2PA_DIR`` (``var/c2pa/``), like the secret key, kept 0600. Readers then report
  ``signingCredential.untrusted`` (a private CA is in no trust list), and nothing else.

A broken certificate or key is one error at start-up (catalogue.checks, ``manage.py check``).
A process that starts anyway (a worker does not run the checks) tries the credentials once:
if they fail, it logs one error and delivers files unsigned (``encode`` returns
``signed=False``), instead of failing every image.
"""

from __future__ import annotations

import datetime
import fcntl
import io
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings

from generation.metadata import STUDIO_VERSION

logger = logging.getLogger(__name__)

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
MIME_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif"}
CA_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
CERT_FILE = "signer.pem"  # the signing certificate, then the CA: the chain c2pa embeds
KEY_FILE = "signer.key"


class SigningError(Exception):
    """The configured credentials cannot sign (the message names the setting and why)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


# --- credentials -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    cert_pem: bytes
    key_pem: bytes
    cert_setting: str
    key_setting: str


def _configured() -> tuple[str, str]:
    """Where the certificate and key come from: a file path or the PEM text ("" if unset)."""
    cert = (getattr(settings, "STUDIO_C2PA_CERT_FILE", "") or "").strip()
    key = (getattr(settings, "STUDIO_C2PA_KEY_FILE", "") or "").strip()
    cert = cert or (getattr(settings, "STUDIO_C2PA_CERT", "") or "").strip()
    key = key or (getattr(settings, "STUDIO_C2PA_KEY", "") or "").strip()
    return cert, key


def _source(kind: str) -> tuple[str, bytes | None]:
    """(setting, PEM or None to read from the file the setting names) of "CERT" or "KEY"."""
    path = (getattr(settings, f"STUDIO_C2PA_{kind}_FILE", "") or "").strip()
    if path:
        return f"STUDIO_C2PA_{kind}_FILE", None
    return f"STUDIO_C2PA_{kind}", (getattr(settings, f"STUDIO_C2PA_{kind}", "") or "").encode()


def signing_enabled() -> bool:
    return bool(getattr(settings, "STUDIO_C2PA", True))


def _pem(setting: str, data: bytes, what: str = "the value") -> bytes:
    if b"-----BEGIN" not in data:
        raise SigningError(setting, f"{what} is not PEM")
    return data


def _read(setting: str, path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SigningError(setting, f"cannot read {path!r} ({exc.strerror or exc})") from None
    return _pem(setting, data, repr(path))


def _private(path: Path, data: bytes) -> None:
    # Written privately and linked into place: a process starting at the same moment sees
    # either no file or the whole file (as studio.embedded.local_secret_key).
    descriptor, temporary = tempfile.mkstemp(dir=path.parent)  # mode 0600
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _make_local_ca(now: datetime.datetime) -> dict[str, bytes]:
    """An EC P-256 CA and a signing certificate with the profile C2PA asks of a signer:
    digitalSignature key usage, emailProtection extended key usage, subject and authority key
    identifiers, not a CA itself."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def usage(**on: bool) -> x509.KeyUsage:
        names = (
            "digital_signature content_commitment key_encipherment data_encipherment "
            "key_agreement key_cert_sign crl_sign encipher_only decipher_only"
        ).split()
        return x509.KeyUsage(**{name: on.get(name, False) for name in names})

    credit = getattr(settings, "STUDIO_CREDIT", "Studio") or "Studio"
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, credit),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{credit} local C2PA CA"),
        ]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, credit),
                    x509.NameAttribute(NameOID.COMMON_NAME, f"{credit} C2PA signer"),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return {
        CA_FILE: ca.public_bytes(pem),
        CA_KEY_FILE: _pem_key(ca_key),
        CERT_FILE: leaf.public_bytes(pem) + ca.public_bytes(pem),
        KEY_FILE: _pem_key(key),
    }


def local_credentials(directory: Path) -> tuple[bytes, bytes]:
    """The embedded default's (certificate chain, key): made once under ``directory``, then
    read back. Files are 0600; a lock keeps two processes from making two CAs."""
    directory = Path(directory)
    cert, key = directory / CERT_FILE, directory / KEY_FILE
    if not (cert.exists() and key.exists()):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not (cert.exists() and key.exists()):
                    files = _make_local_ca(datetime.datetime.now(datetime.UTC))
                    # The key pair first, the chain last: the chain's presence means done.
                    for name in (CA_KEY_FILE, CA_FILE, KEY_FILE, CERT_FILE):
                        (directory / name).unlink(missing_ok=True)
                        _private(directory / name, files[name])
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    return cert.read_bytes(), key.read_bytes()


def credentials() -> Credentials:
    """The credentials signing uses now; SigningError names the setting that is wrong."""
    cert, key = _configured()
    if cert or key:
        (cert_setting, cert_pem), (key_setting, key_pem) = _source("CERT"), _source("KEY")
        if not cert:
            raise SigningError("STUDIO_C2PA_CERT_FILE", f"not set, but {key_setting} is: set both")
        if not key:
            raise SigningError("STUDIO_C2PA_KEY_FILE", f"not set, but {cert_setting} is: set both")
        return Credentials(
            _read(cert_setting, cert) if cert_pem is None else _pem(cert_setting, cert_pem),
            _read(key_setting, key) if key_pem is None else _pem(key_setting, key_pem),
            cert_setting,
            key_setting,
        )
    directory = Path(settings.STUDIO_C2PA_DIR)
    try:
        cert_pem, key_pem = local_credentials(directory)
    except OSError as exc:
        raise SigningError(
            "STUDIO_C2PA_DIR", f"cannot keep the local signing certificate in {directory} ({exc})"
        ) from None
    return Credentials(
        cert_pem,
        key_pem,
        f"STUDIO_C2PA_DIR ({directory / CERT_FILE})",
        f"STUDIO_C2PA_DIR ({directory / KEY_FILE})",
    )


def _algorithm(creds: Credentials):
    """The c2pa signing algorithm for the key, after checking the key is the certificate's."""
    import c2pa
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    try:
        leaf = x509.load_pem_x509_certificates(creds.cert_pem)[0]
    except ValueError as exc:
        raise SigningError(creds.cert_setting, f"not a PEM certificate chain ({exc})") from None
    try:
        key = serialization.load_pem_private_key(creds.key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningError(
            creds.key_setting, f"not an unencrypted PEM private key ({exc})"
        ) from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, public) != leaf.public_key().public_bytes(der, public):
        raise SigningError(
            creds.key_setting,
            "this key does not belong to the first certificate of the chain "
            f"({creds.cert_setting})",
        )
    now = datetime.datetime.now(datetime.UTC)
    if leaf.not_valid_after_utc < now:
        raise SigningError(
            creds.cert_setting, f"the signing certificate expired on {leaf.not_valid_after_utc:%F}"
        )
    if leaf.not_valid_before_utc > now:
        raise SigningError(
            creds.cert_setting,
            f"the signing certificate is not valid before {leaf.not_valid_before_utc:%F}",
        )
    if isinstance(key, ec.EllipticCurvePrivateKey):
        by_curve = {
            "secp256r1": c2pa.C2paSigningAlg.ES256,
            "secp384r1": c2pa.C2paSigningAlg.ES384,
            "secp521r1": c2pa.C2paSigningAlg.ES512,
        }
        if key.curve.name not in by_curve:
            raise SigningError(creds.key_setting, f"EC curve {key.curve.name} is not one C2PA uses")
        return by_curve[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return c2pa.C2paSigningAlg.PS256
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return c2pa.C2paSigningAlg.ED25519
    raise SigningError(creds.key_setting, f"{type(key).__name__} keys cannot sign C2PA")


def _tsa_url() -> str | None:
    url = (getattr(settings, "STUDIO_C2PA_TSA_URL", "") or "").strip()
    if url and not url.startswith(("http://", "https://")):
        raise SigningError("STUDIO_C2PA_TSA_URL", f"expected an http(s) URL, got {url!r}")
    return url or None


# Readers show the rendition itself; a thumbnail in the manifest would add ~30 kB and tens of
# milliseconds to every file.
_BUILDER_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}}


@lru_cache(maxsize=1)
def _context():
    import c2pa

    return c2pa.Context.from_dict(_BUILDER_SETTINGS)


def _sign_with(signer, data: bytes, mime: str, manifest: dict) -> bytes:
    import c2pa

    builder = c2pa.Builder(json.dumps(manifest), _context())
    try:
        out = io.BytesIO()
        builder.sign(signer, mime, io.BytesIO(data), out)
        return out.getvalue()
    finally:
        builder.close()


def _trial(signer) -> None:
    """Sign and read back an 8x8 PNG: c2pa refuses most bad credentials only when it signs."""
    import c2pa
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    manifest = manifest_definition(title="check", software_agent="Studio check")
    signed = _sign_with(signer, buffer.getvalue(), "image/png", manifest)
    reader = c2pa.Reader("image/png", io.BytesIO(signed))
    try:
        codes = {s.get("code") for s in json.loads(reader.json()).get("validation_status", [])}
    finally:
        reader.close()
    unexpected = codes - {"signingCredential.untrusted"}
    if unexpected:
        problems = ", ".join(sorted(str(code) for code in unexpected))
        raise ValueError(f"the signed test image does not validate: {problems}")


def build_signer():
    """A c2pa Signer from the settings, tried once; SigningError names what is wrong."""
    import c2pa

    creds = credentials()
    algorithm = _algorithm(creds)
    tsa = _tsa_url()
    try:
        signer = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(algorithm, creds.cert_pem, creds.key_pem, tsa)
        )
    except c2pa.C2paError as exc:
        raise SigningError(creds.cert_setting, f"c2pa refuses these credentials ({exc})") from None
    try:
        _trial(signer)
    except (c2pa.C2paError, ValueError) as exc:
        signer.close()
        through = f" through the time-stamp authority {tsa} (STUDIO_C2PA_TSA_URL)" if tsa else ""
        raise SigningError(
            creds.cert_setting, f"c2pa cannot sign with these credentials{through} ({exc})"
        ) from None
    return signer


def _settings_key() -> tuple:
    return (
        signing_enabled(),
        *_configured(),
        getattr(settings, "STUDIO_C2PA_TSA_URL", ""),
        str(getattr(settings, "STUDIO_C2PA_DIR", "")),
        os.getpid(),  # a forked work-horse builds its own: native handles do not cross a fork
    )


@lru_cache(maxsize=4)
def _cached_signer(key: tuple):
    if not key[0]:
        return None
    try:
        return build_signer()
    except SigningError as exc:
        # catalogue.checks reports this at start-up; here it is said once per process.
        logger.error("C2PA signing is off in this process: %s", exc)
        return None


def signer():
    """The process's c2pa Signer (built once per process and settings), or None when signing
    is off or the credentials are broken (logged once)."""
    return _cached_signer(_settings_key())


# --- the manifest ----------------------------------------------------------------------------


def manifest_definition(*, title: str, software_agent: str, parameters: dict | None = None) -> dict:
    action: dict = {
        "action": "c2pa.created",
        "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
        "softwareAgent": {"name": software_agent, "version": STUDIO_VERSION},
    }
    if parameters:
        action["parameters"] = parameters
    return {
        "claim_generator_info": [{"name": "Studio", "version": STUDIO_VERSION}],
        "title": title,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}],
    }


def software_agent(item) -> str:
    """ "Studio 0.1.0 (model sd15 v3; LoRA style-a v2 @ 0.8)": the generator and the pinned
    model and LoRA versions."""
    model = item.base_model
    parts = [f"model {model.name} v{model.version}"]
    parts += [f"LoRA {lora['name']} v{lora['version']} @ {lora['weight']:g}" for lora in item.loras]
    return f"Studio {STUDIO_VERSION} ({'; '.join(parts)})"


def asset_manifest(asset, *, channel: str) -> dict:
    item = asset.item
    model = item.base_model
    return manifest_definition(
        title=f"{asset.title} ({channel})" if channel else asset.title,
        software_agent=software_agent(item),
        parameters={
            "studio.item": str(item.pk),
            "studio.asset": str(asset.pk),
            "studio.channel": channel,
            "studio.model": {
                "name": model.name,
                "version": model.version,
                "sha256": model.sha256,
                "source": model.source,
            },
            "studio.loras": [
                {
                    "name": lora["name"],
                    "version": lora["version"],
                    "weight": lora["weight"],
                    "sha256": lora.get("sha256", ""),
                }
                for lora in item.loras
            ],
        },
    )


def sign(data: bytes, *, format: str, asset, channel: str) -> bytes | None:
    """``data`` (an encoded jpeg, png, webp or avif) with a signed C2PA manifest, or None when
    signing is off or unavailable in this process."""
    current = signer()
    if current is None:
        return None
    return _sign_with(current, data, MIME_TYPES[format], asset_manifest(asset, channel=channel))
