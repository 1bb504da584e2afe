"""Reading XForms safely: identity, media they name, and a question list for preview."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from server.forms.problems import rejected

NS = {
    "h": "http://www.w3.org/1999/xhtml",
    "xf": "http://www.w3.org/2002/xforms",
    "jr": "http://openrosa.org/javarosa",
    "odk": "http://www.opendatakit.org/xforms",
    "orx": "http://openrosa.org/xforms",
}
XF = "{{{}}}".format(NS["xf"])

#: Form ids become parts of URLs and file names: no slashes, dots-only or control chars.
FORM_ID_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,254}$")
MEDIA_REF = re.compile(r"jr://(images|audio|video|file|file-csv)/([^\s'\"<>)]+)")
MEDIA_TYPES = {"images": "image", "audio": "audio", "video": "video", "file": "file"}
MEDIA_TYPES["file-csv"] = "file"
#: A safe attachment name: a plain file name, no directories.
ATTACHMENT_NAME = re.compile(r"^[^/\\\x00-\x1f]{1,255}$")

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=False
)


def parse_xml_safely(data: bytes, what: str = "XForm") -> etree._Element:
    """Parse untrusted XML, refusing DTDs, entities and external references outright.

    The parser never loads a DTD, resolves an entity or reads the network, so nothing is
    expanded or fetched while parsing; any document type declaration is then refused.
    """
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError as error:
        if _declares_dtd(data):
            raise _dtd_refused(what) from None
        raise rejected(f"The {what} is not well-formed XML: {error}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _dtd_refused(what)
    return root


def _declares_dtd(data: bytes) -> bool:
    return b"<!DOCTYPE" in data or b"<!ENTITY" in data


def _dtd_refused(what: str):
    return rejected(
        f"The {what} declares a DTD or entities, which are not allowed "
        "(they can read server files or expand without limit)."
    )


@dataclass
class XFormInfo:
    form_id: str
    version: str
    title: str
    public_key: str | None
    #: (name, type) of every media file the form refers to, sorted by name.
    media: list[tuple[str, str]] = field(default_factory=list)


def _model(root: etree._Element) -> etree._Element:
    model = root.find("h:head/xf:model", NS)
    if model is None:
        raise rejected("This is not an XForm: there is no <h:head><model> element.")
    return model


def local_name(element: etree._Element) -> str:
    """An element's name without its namespace (submissions may or may not use one).

    "" for a comment or processing instruction (their tag is not a string)."""
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def primary_instance_root(root: etree._Element) -> etree._Element:
    instance = _model(root).find("xf:instance", NS)
    children = [] if instance is None else [c for c in instance if isinstance(c.tag, str)]
    if not children:
        raise rejected("This XForm has no primary instance (<instance> with one element).")
    return children[0]


def instance_version(element: etree._Element) -> str:
    """`version`, or `orx:version` as older forms (and JavaRosa) spell it."""
    return element.get("version") or element.get(f"{{{NS['orx']}}}version") or ""


def inspect_xform(root: etree._Element) -> XFormInfo:
    if root.tag != "{{{}}}html".format(NS["h"]):
        raise rejected("This is not an XForm: the root element must be <h:html>.")
    instance_root = primary_instance_root(root)
    form_id = instance_root.get("id") or ""
    if not form_id:
        raise rejected("The XForm's primary instance has no id attribute (the form id).")
    if not FORM_ID_PATTERN.match(form_id):
        raise rejected(
            f"The form id '{form_id}' may only use letters, digits, '_', '-' and '.', "
            "must start with a letter or '_', and be at most 255 characters.",
            sheet="settings",
            column="form_id",
        )
    version = instance_version(instance_root)
    if len(version) > 255 or re.search(r"[\x00-\x1f]", version):
        raise rejected("The form version must be at most 255 printable characters.")
    title = (root.findtext("h:head/h:title", default="", namespaces=NS) or "").strip()
    submission = _model(root).find("xf:submission", NS)
    public_key = submission.get("base64RsaPublicKey") if submission is not None else None
    return XFormInfo(
        form_id=form_id,
        version=version,
        title=title or form_id,
        public_key=public_key or None,
        media=referenced_media(root),
    )


def referenced_media(root: etree._Element) -> list[tuple[str, str]]:
    """Media named anywhere in the form: itext values, instance srcs, attributes."""
    found: dict[str, str] = {}
    texts: list[str] = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        texts.extend(element.attrib.values())
        if element.text:
            texts.append(element.text)
    for text in texts:
        for scheme, name in MEDIA_REF.findall(text):
            found.setdefault(name, MEDIA_TYPES[scheme])
    return sorted(found.items())


# ---- preview ---------------------------------------------------------------------------

CONTROL_TAGS = {
    "input",
    "select1",
    "select",
    "upload",
    "trigger",
    "range",
    "rank",
    "odk:rank",
}


@dataclass
class PreviewItem:
    kind: str  # question | group | repeat
    ref: str
    name: str
    type: str
    depth: int
    labels: dict[str, str]
    hints: dict[str, str]
    choices: list[dict[str, str]] = field(default_factory=list)
    relevant: str | None = None
    required: bool = False
    constraint: str | None = None


def _translations(model: etree._Element) -> dict[str, dict[str, str]]:
    """{text id: {language: text}} from the itext block (plain form, not media)."""
    texts: dict[str, dict[str, str]] = {}
    for translation in model.findall("xf:itext/xf:translation", NS):
        lang = translation.get("lang") or "default"
        for text in translation.findall("xf:text", NS):
            for value in text.findall("xf:value", NS):
                if value.get("form") in (None, "", "long", "short", "guidance"):
                    texts.setdefault(text.get("id"), {})[lang] = _text_of(value)
                    break
    return texts


def _text_of(element: etree._Element) -> str:
    parts = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str) and etree.QName(child).localname == "output":
            value = child.get("value", "")
            parts.append("${" + value.rsplit("/", 1)[-1] + "}")
        parts.append(child.tail or "")
    return "".join(parts).strip()


def _label(element: etree._Element | None, itext: dict) -> dict[str, str]:
    if element is None:
        return {}
    ref = element.get("ref", "")
    match = re.match(r"jr:itext\(\s*'([^']+)'\s*\)", ref)
    if match:
        return dict(itext.get(match.group(1), {}))
    text = _text_of(element)
    return {"default": text} if text else {}


def preview(root: etree._Element) -> list[PreviewItem]:
    """The question list, in form order, with labels per language."""
    model = _model(root)
    itext = _translations(model)
    binds = {b.get("nodeset"): b for b in model.findall("xf:bind", NS)}
    instances = {i.get("id"): i for i in model.findall("xf:instance", NS) if i.get("id")}
    body = root.find("h:body", NS)
    items: list[PreviewItem] = []
    if body is not None:
        _walk(body, 0, items, itext, binds, instances)
    return items


ITEMSET_SOURCE = re.compile(r"instance\(\s*'([^']+)'\s*\)/root/item")


def _itemset_choices(itemset, itext: dict, instances: dict) -> list[dict[str, str]]:
    """Choices from a secondary instance (how pyxform writes select lists)."""
    match = ITEMSET_SOURCE.match(itemset.get("nodeset", ""))
    instance = instances.get(match.group(1)) if match else None
    if instance is None:
        return []  # external (CSV, entity list) choices: known only on the phone
    value_ref = itemset.find("xf:value", NS)
    label_ref = itemset.find("xf:label", NS)
    value_name = value_ref.get("ref", "name") if value_ref is not None else "name"
    label_expr = label_ref.get("ref", "label") if label_ref is not None else "label"
    itext_field = re.match(r"jr:itext\(\s*(\w+)\s*\)", label_expr)
    choices = []
    for node in instance.findall("xf:root/xf:item", NS):
        choice = {"value": node.findtext(f"xf:{value_name}", default="", namespaces=NS)}
        if itext_field:
            text_id = node.findtext(f"xf:{itext_field.group(1)}", default="", namespaces=NS)
            choice.update(itext.get(text_id, {}))
        else:
            choice["default"] = node.findtext(f"xf:{label_expr}", default="", namespaces=NS)
        choices.append(choice)
    return choices


def _walk(parent, depth: int, items: list, itext: dict, binds: dict, instances: dict) -> None:
    for element in parent:
        if not isinstance(element.tag, str):
            continue
        local = etree.QName(element).localname
        if local in ("group", "repeat"):
            ref = element.get("ref") or element.get("nodeset") or ""
            label = _label(element.find("xf:label", NS), itext)
            inner_repeat = element.find("xf:repeat", NS)
            kind = "repeat" if local == "repeat" or inner_repeat is not None else "group"
            if local == "repeat" and items and items[-1].ref == ref:
                _walk(element, depth, items, itext, binds, instances)  # the repeat inside its group
                continue
            items.append(_item(kind, ref, kind, depth, label, {}, binds))
            _walk(element, depth + 1, items, itext, binds, instances)
        elif local in CONTROL_TAGS:
            ref = element.get("ref") or ""
            bind = binds.get(ref)
            qtype = (bind.get("type") if bind is not None else None) or "string"
            kind_type = {"select1": "select_one", "select": "select_multiple"}.get(local, qtype)
            if local == "upload":
                kind_type = element.get("mediatype", "file").split("/")[0]
            item = _item(
                "question",
                ref,
                kind_type,
                depth,
                _label(element.find("xf:label", NS), itext),
                _label(element.find("xf:hint", NS), itext),
                binds,
            )
            for choice in element.findall("xf:item", NS):
                labels = _label(choice.find("xf:label", NS), itext)
                value = choice.findtext("xf:value", default="", namespaces=NS)
                item.choices.append({"value": value, **labels})
            itemset = element.find("xf:itemset", NS)
            if itemset is not None:
                item.choices.extend(_itemset_choices(itemset, itext, instances))
            items.append(item)


def _item(kind, ref, qtype, depth, labels, hints, binds) -> PreviewItem:
    bind = binds.get(ref)
    required = bind is not None and bind.get("required", "").strip() == "true()"
    return PreviewItem(
        kind=kind,
        ref=ref,
        name=ref.rsplit("/", 1)[-1],
        type=qtype.split(":")[-1],
        depth=depth,
        labels=labels,
        hints=hints,
        relevant=bind.get("relevant") if bind is not None else None,
        required=required,
        constraint=bind.get("constraint") if bind is not None else None,
    )


def languages(items: list[PreviewItem]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        for lang in item.labels:
            seen.setdefault(lang, None)
    return list(seen)
