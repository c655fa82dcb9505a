"""Content Credentials: a signed C2PA manifest in every delivered file, and its start-up check."""

from __future__ import annotations

import io
import json
import logging
import stat

import c2pa
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from PIL import Image, features

from catalogue.checks import c2pa_credentials_check
from catalogue.delivery import signing
from catalogue.delivery.metadata import encode, master_with_provenance

FORMATS = ["jpeg", "png", "webp"] + (["avif"] if features.check("avif") else [])


def image() -> Image.Image:
    return Image.new("RGB", (80, 64), (20, 140, 90))


def read(data: bytes, format: str) -> tuple[dict, list[str]]:
    reader = c2pa.Reader(signing.MIME_TYPES[format], io.BytesIO(data))
    try:
        store = json.loads(reader.json())
    finally:
        reader.close()
    codes = [status["code"] for status in store.get("validation_status", [])]
    return store["manifests"][store["active_manifest"]], codes


@pytest.fixture
def lora_asset(asset):
    asset.item.loras = [
        {
            "id": 7,
            "name": "style-a",
            "version": 2,
            "file": "/models/loras/style-a.safetensors",
            "sha256": "ab" * 32,
            "weight": 0.8,
        }
    ]
    asset.item.save(update_fields=["loras"])
    return asset


@pytest.mark.parametrize("format", FORMATS)
def test_a_delivered_file_carries_a_manifest_c2pa_validates(lora_asset, format):
    data, signed = encode(image(), format=format, quality=85, asset=lora_asset, channel="web")

    assert signed
    manifest, codes = read(data, format)
    # A private CA is in no trust list; nothing else may be wrong.
    assert codes == ["signingCredential.untrusted"]
    assert manifest["claim_generator_info"][0]["name"] == "Studio"
    assert manifest["title"] == f"{lora_asset.title} (web)"
    (actions,) = [a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions")]
    (created,) = actions["data"]["actions"]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == signing.TRAINED_ALGORITHMIC_MEDIA
    model = lora_asset.item.base_model
    agent = created["softwareAgent"]["name"]
    assert agent.startswith("Studio ")
    assert f"model {model.name} v{model.version}" in agent
    assert "LoRA style-a v2 @ 0.8" in agent
    assert created["parameters"]["studio.item"] == str(lora_asset.item.pk)


def test_the_delivered_master_is_signed_too(asset):
    manifest, codes = read(master_with_provenance(asset), "png")

    assert codes == ["signingCredential.untrusted"]
    assert manifest["title"] == f"{asset.title} (master)"


def test_signing_off_delivers_files_without_a_manifest(asset, settings):
    settings.STUDIO_C2PA = False

    data, signed = encode(image(), format="jpeg", quality=85, asset=asset, channel="web")

    assert not signed
    assert c2pa.Reader.try_create("image/jpeg", io.BytesIO(data)) is None


def test_the_signer_is_built_once_per_process(asset, settings, tmp_path, monkeypatch):
    settings.STUDIO_C2PA_DIR = tmp_path / "c2pa"
    built = []
    real = signing.build_signer
    monkeypatch.setattr(signing, "build_signer", lambda: built.append(1) or real())

    for _ in range(3):
        assert encode(image(), format="jpeg", quality=85, asset=asset, channel="web")[1]

    assert len(built) == 1


# --- the local CA ------------------------------------------------------------------------------


def test_the_local_ca_is_made_once_and_kept_private(tmp_path):
    first = signing.local_credentials(tmp_path / "c2pa")
    second = signing.local_credentials(tmp_path / "c2pa")

    assert first == second
    for name in ("ca.pem", "ca.key", "signer.pem", "signer.key"):
        assert stat.S_IMODE((tmp_path / "c2pa" / name).stat().st_mode) == 0o600


def test_the_local_signing_certificate_has_the_profile_c2pa_asks_for(tmp_path):
    chain, _ = signing.local_credentials(tmp_path)
    leaf, ca = x509.load_pem_x509_certificates(chain)

    assert leaf.issuer == ca.subject
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.public_key().curve.name == "secp256r1"
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in usages
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    authority = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_key_id = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert authority.key_identifier == ca_key_id.digest


# --- configured credentials and the start-up check --------------------------------------------


@pytest.fixture
def org_credentials(tmp_path):
    """An organisation's certificate and key files (made here by the same local CA code)."""
    chain, key = signing.local_credentials(tmp_path / "org-ca")
    cert_file, key_file = tmp_path / "org.pem", tmp_path / "org.key"
    cert_file.write_bytes(chain)
    key_file.write_bytes(key)
    return cert_file, key_file


def configure(settings, cert, key) -> None:
    settings.STUDIO_C2PA_CERT_FILE = str(cert)
    settings.STUDIO_C2PA_KEY_FILE = str(key)


def test_configured_credentials_pass_the_check_and_sign(asset, settings, org_credentials):
    configure(settings, *org_credentials)

    assert c2pa_credentials_check() == []
    data, signed = encode(image(), format="png", quality=85, asset=asset, channel="web")
    assert signed
    manifest, codes = read(data, "png")
    assert codes == ["signingCredential.untrusted"]
    assert manifest["signature_info"]["common_name"] == "Studio C2PA signer"


def test_the_credentials_may_be_given_as_pem_text(asset, settings, org_credentials):
    settings.STUDIO_C2PA_CERT = org_credentials[0].read_text()
    settings.STUDIO_C2PA_KEY = org_credentials[1].read_text()

    assert c2pa_credentials_check() == []
    assert encode(image(), format="webp", quality=85, asset=asset, channel="web")[1]


def only_error(settings) -> str:
    errors = c2pa_credentials_check()
    assert len(errors) == 1
    assert errors[0].id == "catalogue.E101"
    return errors[0].msg


def test_a_broken_certificate_file_is_one_error_at_check(settings, org_credentials, tmp_path):
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    configure(settings, broken, org_credentials[1])

    message = only_error(settings)

    assert "STUDIO_C2PA_CERT_FILE" in message
    assert "not a PEM certificate chain" in message
    with pytest.raises(SystemCheckError, match="catalogue.E101"):
        call_command("check")


def test_a_missing_certificate_file_is_named(settings, org_credentials, tmp_path):
    configure(settings, tmp_path / "nowhere.pem", org_credentials[1])

    message = only_error(settings)

    assert "STUDIO_C2PA_CERT_FILE: cannot read" in message
    assert "nowhere.pem" in message


def test_a_key_of_another_certificate_is_named(settings, org_credentials, tmp_path):
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "other.key").write_bytes(other)
    configure(settings, org_credentials[0], tmp_path / "other.key")

    message = only_error(settings)

    assert "STUDIO_C2PA_KEY_FILE" in message
    assert "does not belong to the first certificate" in message


def test_a_self_signed_certificate_c2pa_refuses_is_named(settings, tmp_path):
    directory = tmp_path / "ca"
    signing.local_credentials(directory)
    # The CA's own certificate and key: a pair, but c2pa signs with no self-signed certificate.
    configure(settings, directory / "ca.pem", directory / "ca.key")

    message = only_error(settings)

    assert "STUDIO_C2PA_CERT_FILE" in message
    assert "self-signed" in message


def test_a_key_without_a_certificate_is_named(settings, org_credentials):
    settings.STUDIO_C2PA_KEY_FILE = str(org_credentials[1])

    assert "STUDIO_C2PA_CERT_FILE: not set" in only_error(settings)


def test_the_check_passes_on_the_embedded_default_before_the_local_ca_exists(settings, tmp_path):
    settings.STUDIO_C2PA_DIR = tmp_path / "fresh"

    assert c2pa_credentials_check() == []
    assert not (tmp_path / "fresh").exists()


def test_a_worker_with_broken_credentials_delivers_unsigned_and_says_so_once(
    asset, settings, org_credentials, tmp_path, caplog
):
    broken = tmp_path / "garbage.pem"
    broken.write_text("garbage")
    configure(settings, broken, org_credentials[1])

    with caplog.at_level(logging.ERROR, logger="catalogue.delivery.signing"):
        results = [
            encode(image(), format="jpeg", quality=85, asset=asset, channel="web") for _ in range(3)
        ]

    assert [signed for _, signed in results] == [False, False, False]
    errors = [r for r in caplog.records if "C2PA signing is off" in r.getMessage()]
    assert len(errors) == 1
    assert "STUDIO_C2PA_CERT_FILE" in errors[0].getMessage()
