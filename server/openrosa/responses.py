"""OpenRosa documents: form lists, manifests and the OpenRosaResponse phones show."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from flask import Response, current_app
from lxml import etree

XFORMS_LIST_NS = "http://openrosa.org/xforms/xformsList"
MANIFEST_NS = "http://openrosa.org/xforms/xformsManifest"
RESPONSE_NS = "http://openrosa.org/http/response"
XML_CONTENT_TYPE = "text/xml; charset=utf-8"  # Collect refuses application/xml here


def openrosa_headers() -> dict[str, str]:
    return {
        "X-OpenRosa-Version": "1.0",
        "X-OpenRosa-Accept-Content-Length": str(
            current_app.config["OPENROSA_MAX_SUBMISSION_BYTES"]
        ),
    }


def _xml(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def message(text: str, status: int, nature: str = "") -> Response:
    """An <OpenRosaResponse>: Collect shows its message to the interviewer."""
    return Response(
        _message_xml(text, nature),
        status=status,
        content_type=XML_CONTENT_TYPE,
        headers=openrosa_headers(),
    )


@functools.lru_cache(maxsize=256)
def _message_xml(text: str, nature: str) -> bytes:
    """The document, built once per text: a few texts answer almost every submission."""
    root = etree.Element("OpenRosaResponse", nsmap={None: RESPONSE_NS})
    element = etree.SubElement(root, "message")
    if nature:
        element.set("nature", nature)
    element.text = text
    return _xml(root)


@dataclass
class FormListEntry:
    form_id: str
    name: str
    version: str
    md5: str
    download_url: str
    manifest_url: str | None


def form_list(entries: Iterable[FormListEntry], verbose: bool = False) -> Response:
    root = etree.Element("xforms", nsmap={None: XFORMS_LIST_NS})
    for entry in entries:
        xform = etree.SubElement(root, "xform")
        for tag, value in (
            ("formID", entry.form_id),
            ("name", entry.name),
            ("version", entry.version),
            ("hash", f"md5:{entry.md5}"),
        ):
            etree.SubElement(xform, tag).text = value
        if verbose:
            etree.SubElement(xform, "descriptionText").text = entry.name
        etree.SubElement(xform, "downloadUrl").text = entry.download_url
        if entry.manifest_url:
            etree.SubElement(xform, "manifestUrl").text = entry.manifest_url
    return Response(_xml(root), content_type=XML_CONTENT_TYPE, headers=openrosa_headers())


@dataclass
class ManifestEntry:
    filename: str
    md5: str
    download_url: str
    #: For an entity list: where phones ask which of their entities were deleted.
    integrity_url: str | None = None


def manifest(entries: Iterable[ManifestEntry]) -> Response:
    root = etree.Element("manifest", nsmap={None: MANIFEST_NS})
    for entry in entries:
        media = etree.SubElement(root, "mediaFile")
        if entry.integrity_url:
            media.set("type", "entityList")
        etree.SubElement(media, "filename").text = entry.filename
        etree.SubElement(media, "hash").text = f"md5:{entry.md5}"
        etree.SubElement(media, "downloadUrl").text = entry.download_url
        if entry.integrity_url:
            etree.SubElement(media, "integrityUrl").text = entry.integrity_url
    return Response(_xml(root), content_type=XML_CONTENT_TYPE, headers=openrosa_headers())


def entity_integrity(states: Iterable[tuple[str, bool]]) -> Response:
    """Which of a phone's entities are deleted, as ODK Central answers its integrity URL."""
    root = etree.Element("data")
    entities = etree.SubElement(root, "entities")
    for uuid, deleted in states:
        entity = etree.SubElement(entities, "entity", id=uuid)
        etree.SubElement(entity, "deleted").text = "true" if deleted else "false"
    return Response(_xml(root), content_type=XML_CONTENT_TYPE, headers=openrosa_headers())
