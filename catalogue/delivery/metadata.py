"""Provenance written into every delivered file (the master and each rendition).

- **A1111 infotext** (generation.metadata.item_infotext): a PNG ``parameters`` text chunk; in
  JPEG, WebP and AVIF the EXIF UserComment (0x9286) as AUTOMATIC1111 writes it with
  ``piexif.helper.UserComment.dump(text, encoding="unicode")``: ``b"UNICODE\\0"`` then UTF-16
  big-endian, in a big-endian ("MM") EXIF block as piexif makes, so exiftool decodes it too.
- **XMP**: ``dc:title``, ``dc:description`` (the prompt), ``dc:subject`` (tags), ``dc:rights``
  and ``xmpRights:UsageTerms`` from the asset's usage rights, ``Iptc4xmpExt:DigitalSourceType``
  = trainedAlgorithmicMedia, ``photoshop:Credit`` (STUDIO_CREDIT), ``xmpMM:DocumentID`` and
  ``studio:ItemId`` / ``studio:AssetId`` / ``studio:Channel``. PNG: an iTXt
  ``XML:com.adobe.xmp`` chunk; JPEG: APP1; WebP and AVIF: their XMP box (Pillow's ``xmp=``).
- the **sRGB ICC profile**.
- a signed **C2PA manifest** (catalogue.delivery.signing) over the bytes above, last, so the
  manifest's hash covers the metadata too.
"""

from __future__ import annotations

import io
import json
import re
from xml.sax.saxutils import escape

from django.conf import settings
from PIL import Image, ImageCms

from catalogue.delivery import signing
from generation.metadata import STUDIO_VERSION, item_infotext

FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "png": "PNG", "avif": "AVIF"}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
_USER_COMMENT = 0x9286
_EXIF_IFD = 0x8769
# The Studio namespace of its own XMP properties (exiftool shows them as XMP-studio:*).
STUDIO_XMP_NS = "https://studio.invalid/ns/xmp/1.0/"
# XML 1.0 has no way to write these, escaped or not.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value) -> str:
    return escape(_NOT_XML.sub("", str(value)))


def rights_statement(asset) -> str:
    """dc:rights: the licence in a few words (the custom licence's own text when custom)."""
    if asset.rights == asset.Rights.CUSTOM and asset.rights_custom.strip():
        return asset.rights_custom.strip()
    return asset.get_rights_display()


def usage_terms(asset) -> str:
    """xmpRights:UsageTerms: the licence with its channels, territories and dates."""
    parts = [rights_statement(asset).rstrip(".") + "."]
    if asset.rights == asset.Rights.CUSTOM and asset.rights_custom.strip():
        parts[0] = f"{asset.get_rights_display()}: {parts[0]}"
    parts.append(f"Channels: {', '.join(asset.rights_channels) or 'any'}.")
    parts.append(f"Territories: {', '.join(asset.rights_territories) or 'any'}.")
    if asset.rights_from:
        parts.append(f"From {asset.rights_from.isoformat()}.")
    parts.append(f"Until {asset.rights_until.isoformat()}." if asset.rights_until else "No expiry.")
    if asset.rights_notes.strip():
        parts.append(asset.rights_notes.strip())
    return " ".join(parts)


def _alt(value: str) -> str:
    return f'<rdf:Alt><rdf:li xml:lang="x-default">{_text(value)}</rdf:li></rdf:Alt>'


def xmp_packet(asset, *, channel: str) -> bytes:
    """The XMP packet (UTF-8) of one delivered file of ``asset``."""
    item = asset.item
    credit = getattr(settings, "STUDIO_CREDIT", "Studio") or "Studio"
    tags = "".join(f"<rdf:li>{_text(tag)}</rdf:li>" for tag in asset.tags)
    subject = f"<dc:subject><rdf:Bag>{tags}</rdf:Bag></dc:subject>" if tags else ""
    body = (
        f"<dc:title>{_alt(asset.title)}</dc:title>"
        f"<dc:description>{_alt(asset.prompt or item.prompt)}</dc:description>"
        f"{subject}"
        f"<dc:rights>{_alt(rights_statement(asset))}</dc:rights>"
        f"<xmpRights:UsageTerms>{_alt(usage_terms(asset))}</xmpRights:UsageTerms>"
        f"<photoshop:Credit>{_text(credit)}</photoshop:Credit>"
        f"<Iptc4xmpExt:DigitalSourceType>{signing.TRAINED_ALGORITHMIC_MEDIA}"
        "</Iptc4xmpExt:DigitalSourceType>"
        f"<xmp:CreatorTool>Studio {STUDIO_VERSION}</xmp:CreatorTool>"
        f"<xmpMM:DocumentID>xmp.did:{item.pk}</xmpMM:DocumentID>"
        f"<studio:ItemId>{item.pk}</studio:ItemId>"
        f"<studio:AssetId>{asset.pk}</studio:AssetId>"
        f"<studio:Channel>{_text(channel)}</studio:Channel>"
    )
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about=""'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        ' xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"'
        ' xmlns:xmpRights="http://ns.adobe.com/xap/1.0/rights/"'
        ' xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"'
        ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        f' xmlns:studio="{STUDIO_XMP_NS}">'
        f"{body}</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    )
    return packet.encode("utf-8")


def user_comment(text: str) -> bytes:
    """piexif.helper.UserComment.dump(text, encoding="unicode"), as AUTOMATIC1111 writes it."""
    return b"UNICODE\0" + text.encode("utf-16-be")


def exif_bytes(text: str) -> bytes:
    exif = Image.Exif()
    # Big-endian like piexif's output: readers that take the UTF-16 byte order from the EXIF
    # block (exiftool) and those that assume big-endian (piexif, A1111) agree.
    exif.endian = ">"
    exif.get_ifd(_EXIF_IFD)[_USER_COMMENT] = user_comment(text)
    return exif.tobytes()


def _save(image: Image.Image, *, format: str, quality: int, asset, channel: str) -> bytes:
    text = item_infotext(asset.item)
    xmp = xmp_packet(asset, channel=channel)
    options: dict = {"icc_profile": _SRGB}
    if format == "png":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("parameters", text)  # iTXt when it is not Latin-1, as A1111's
        info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8"), zip=False)
        info.add_text("studio", json.dumps(asset.item.provenance(), sort_keys=True))
        options["pnginfo"] = info
    else:
        options.update(quality=quality, exif=exif_bytes(text), xmp=xmp)
    buffer = io.BytesIO()
    image.save(buffer, format=FORMATS[format], **options)
    return buffer.getvalue()


def encode(
    image: Image.Image, *, format: str, quality: int, asset, channel: str
) -> tuple[bytes, bool]:
    """The file's bytes in ``format`` (jpeg, webp, png, avif) with the sRGB profile and the
    asset's provenance embedded; returns (bytes, signed) where signed says whether a C2PA
    manifest was added (False when signing is off, or its credentials failed: see
    catalogue.delivery.signing)."""
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    data = _save(image.convert("RGB"), format=format, quality=quality, asset=asset, channel=channel)
    signed = signing.sign(data, format=format, asset=asset, channel=channel)
    return (signed, True) if signed is not None else (data, False)


MASTER_CHANNEL = "master"


def master_with_provenance(asset, *, source: str | None = None) -> bytes:
    """The asset's master (or the stored image ``source``, e.g. the item's generated file) as
    a PNG with the same pixels (RGB or RGBA), carrying the infotext, XMP and, when signing is
    on, a C2PA manifest: what delivery stores as the delivered master."""
    from django.core.files.storage import default_storage

    with default_storage.open(source or asset.image.name, "rb") as handle:
        with Image.open(handle, formats=["PNG", "JPEG", "WEBP"]) as opened:
            opened.load()
            # The embedded profile is an RGB one: a grey or palette master is written as RGB
            # with the same colours.
            master = opened if opened.mode in ("RGB", "RGBA") else opened.convert("RGB")
            data = _save(master, format="png", quality=100, asset=asset, channel=MASTER_CHANNEL)
    signed = signing.sign(data, format="png", asset=asset, channel=MASTER_CHANNEL)
    return signed if signed is not None else data
