"""What a submission's XML says about itself: form, version, instanceID, files it names."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from server.forms.xform import NS, instance_version, local_name, primary_instance_root

ENCRYPTED_NS = "http://www.opendatakit.org/xforms/encrypted"
#: A safe attachment name: a plain file name, no directory parts, no control characters.
SAFE_NAME = re.compile(r"^(?!\.{1,2}$)[^/\\\x00-\x1f]{1,255}$")


#: Prefixes some clients (and ODK Central's own test data) use without declaring them.
KNOWN_PREFIXES = {
    "orx": "http://openrosa.org/xforms",
    "jr": "http://openrosa.org/javarosa",
    "odk": "http://www.opendatakit.org/xforms",
    "entities": "http://www.opendatakit.org/xforms/entities",
}
_ROOT_START = re.compile(rb"^((?:\s|<\?[^>]*\?>|<!--.*?-->)*<[A-Za-z_][\w.\-:]*)", re.S)


def with_known_prefixes(xml: bytes) -> bytes:
    """A copy of the XML, for reading only, that declares the usual prefixes on its root.

    The bytes stored and served back stay exactly as received.
    """
    match = _ROOT_START.match(xml)
    if match is None:
        return xml
    declarations = b"".join(
        f' xmlns:{prefix}="{uri}"'.encode()
        for prefix, uri in KNOWN_PREFIXES.items()
        if f"xmlns:{prefix}=".encode() not in xml[: match.end() + 2000]
    )
    return xml[: match.end()] + declarations + xml[match.end() :]


class BadSubmission(Exception):
    """The XML cannot be a submission (HTTP 400, with a message for the interviewer)."""


@dataclass
class InstanceInfo:
    form_id: str
    version: str
    instance_id: str
    deprecated_id: str | None
    encrypted: bool


def _meta_value(root: etree._Element, name: str) -> str | None:
    for meta in root:
        if isinstance(meta.tag, str) and local_name(meta) == "meta":
            for child in meta:
                if isinstance(child.tag, str) and local_name(child) == name:
                    return (child.text or "").strip() or None
    return None


def read_instance(root: etree._Element) -> InstanceInfo:
    """Read the identity of a submission: which form and version, which instance."""
    form_id = root.get("id") or ""
    if not form_id:
        raise BadSubmission("The submission does not say which form it belongs to (no id).")
    encrypted = etree.QName(root).namespace == ENCRYPTED_NS or root.get("encrypted") == "yes"
    instance_id = _meta_value(root, "instanceID")
    if not instance_id:
        raise BadSubmission("The submission has no meta/instanceID; it cannot be stored safely.")
    return InstanceInfo(
        form_id=form_id,
        version=instance_version(root),
        instance_id=instance_id,
        deprecated_id=_meta_value(root, "deprecatedID"),
        encrypted=encrypted,
    )


def named_files(
    root: etree._Element, identity: InstanceInfo, binary_paths: list[list[str]]
) -> list[str]:
    """File names the XML names as attachments (binary answers, encrypted media), sorted;
    `binary_paths` come from the form's binary binds."""
    if identity.encrypted:
        named = [
            (f.text or "").strip()
            for f in root.iter()
            if isinstance(f.tag, str) and local_name(f) in ("file", "encryptedXmlFile")
        ]
    else:
        named = _binary_answers(root, binary_paths)
    return sorted({n for n in named if n})


def _binary_answers(root: etree._Element, paths: list[list[str]]) -> list[str]:
    found: list[str] = []
    for steps in paths:
        level = [root]
        for step in steps:
            level = [
                c for e in level for c in e if isinstance(c.tag, str) and local_name(c) == step
            ]
        found += [(e.text or "").strip() for e in level]
    return found


def binary_paths(form_xml: str) -> list[list[str]]:
    """Element steps below the root of every binary (file) question in an XForm."""
    root = etree.fromstring(form_xml.encode("utf-8"))
    model = root.find("h:head/xf:model", NS)
    instance_root = primary_instance_root(root)
    paths = []
    for bind in model.findall("xf:bind", NS):
        if (bind.get("type") or "").split(":")[-1] == "binary":
            steps = [s for s in (bind.get("nodeset") or "").split("/") if s]
            if steps and steps[0] == local_name(instance_root):
                paths.append(steps[1:])
    return paths
