"""Fill an XForm's primary instance as ODK Collect submits it: for generators and tests.

    xml = fill_instance(xform, {"con_consent": "true", ...}, {"trafficking_event": [...]},
                        instance_id="uuid:...", entities={"cases": {"id": ..., "create": "1"}})

Repeats are cloned from their template, entity ids set as the form's setvalue actions
would, and elements whose `relevant` is false are left out, as JavaRosa's
XFormSerializingVisitor does for a finalised form. `relevant` is read with a small XPath
subset (what pyxform writes from XLSForms); anything else is refused, never guessed.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lxml import etree

XF = "{http://www.w3.org/2002/xforms}"
JR_TEMPLATE = "{http://openrosa.org/javarosa}template"
XML_DECLARATION = b"<?xml version='1.0' ?>"

# ---- filling a form's primary instance ---------------------------------------------------


@dataclass(frozen=True)
class _Skeleton:
    root: etree._Element  #: the primary instance, element names without namespace
    relevance: tuple[tuple[str, Callable], ...]  #: (bind nodeset, compiled `relevant`)


@functools.lru_cache(maxsize=16)
def _skeleton(xform_xml: str) -> _Skeleton:
    html = etree.fromstring(xform_xml.encode("utf-8"))
    instance = html.find(f"*/{XF}model/{XF}instance")
    source = next(c for c in instance if isinstance(c.tag, str))
    relevance = tuple(
        (bind.get("nodeset").strip(), _compile(bind.get("relevant")))
        for bind in html.iter(f"{XF}bind")
        if bind.get("relevant") and bind.get("nodeset")
    )
    return _Skeleton(_plain_copy(source), relevance)


def _plain_copy(source: etree._Element, parent: etree._Element | None = None) -> etree._Element:
    """Collect writes instance elements without the XForms default namespace."""
    tag = etree.QName(source).localname
    if parent is None:
        element = etree.Element(tag, nsmap={p: u for p, u in source.nsmap.items() if p})
    else:
        element = etree.SubElement(parent, tag)
    for name, value in source.attrib.items():
        element.set(name, value)
    element.text = source.text if source.text and source.text.strip() else None
    for child in source:
        if isinstance(child.tag, str):
            _plain_copy(child, element)
    return element


def fill_instance(
    xform_xml: str,
    answers: Mapping[str, object],
    repeats: Mapping[str, list[Mapping]] | None = None,
    *,
    instance_id: str,
    entities: Mapping[str, Mapping[str, str]] | None = None,
    new_uuid: Callable[[], str] | None = None,
) -> bytes:
    """The submission XML Collect would send for these answers to this XForm.

    `answers` maps question names (outside repeats) to values: str, int, date, or a list
    for a select_multiple; None or absent leaves the question empty. `repeats` maps a
    repeat's name to one dict per instance, holding its answers, nested repeats (lists)
    and "@entity" (attributes, and "label", for the instance's entity). `entities` maps
    a dataset to the attributes of its entity outside repeats (`id`, `create`,
    `baseVersion`, `label`, ...). An entity that creates and has no id gets `new_uuid()`.
    Elements whose `relevant` is false are left out; answering one is a ValueError, as is
    a question name the form does not have (so a generator's slip never goes unseen).
    """
    skeleton = _skeleton(xform_xml)
    root = copy.deepcopy(skeleton.root)
    make_uuid = new_uuid or (lambda: str(uuid.uuid4()))
    answered: list[tuple[str, etree._Element]] = []
    top_entities = dict(entities or {})
    overlap = set(answers) & set(repeats or {})
    if overlap:
        raise ValueError(f"both an answer and a repeat: {sorted(overlap)}")
    values = {**answers, **(repeats or {})}
    used = _fill(root, values, top_entities.get, make_uuid, answered)
    unknown = set(top_entities) - used
    if unknown:
        raise KeyError(f"no entity of dataset(s) {sorted(unknown)} outside repeats")
    instance_node = root.find("meta/instanceID")
    if instance_node is None:
        raise ValueError("the form has no meta/instanceID")
    instance_node.text = instance_id
    _drop_non_relevant(root, skeleton.relevance, answered)
    return XML_DECLARATION + etree.tostring(root, encoding="utf-8", xml_declaration=False)


def _fill(container, values, entity_attrs, make_uuid, answered) -> set[str]:
    """Fill one container (the root, or a repeat instance); return the datasets given."""
    leaves: dict[str, list[etree._Element]] = {}
    templates: list[etree._Element] = []
    entity_nodes: list[etree._Element] = []
    _walk(container, leaves, templates, entity_nodes)
    for template in templates:
        parent = template.getparent()
        position = parent.index(template)
        for old in [c for c in parent if c.tag == template.tag]:
            parent.remove(old)  # the template and the first instance pyxform adds
        for offset, item in enumerate(values.get(template.tag) or []):
            clone = copy.deepcopy(template)
            del clone.attrib[JR_TEMPLATE]
            parent.insert(position + offset, clone)
            attrs = item.get("@entity", {})
            inner = {k: v for k, v in item.items() if k != "@entity"}
            _fill(clone, inner, lambda _dataset, a=attrs: a, make_uuid, answered)
    repeat_names = {t.tag for t in templates}
    for name, value in values.items():
        if value is None or name in repeat_names:
            continue
        nodes = leaves.get(name)
        if not nodes:
            raise KeyError(f"{name!r} is not a question or repeat of this form here")
        if len(nodes) > 1:
            raise ValueError(f"{name!r} names {len(nodes)} questions; cannot tell which")
        nodes[0].text = _text(value)
        answered.append((name, nodes[0]))
    used = set()
    for entity in entity_nodes:
        dataset = entity.get("dataset")
        attrs = entity_attrs(dataset)
        if attrs is not None:
            used.add(dataset)
            for key, value in attrs.items():
                if key == "label":
                    label = entity.find("label")
                    if label is not None:
                        label.text = _text(value)
                else:
                    entity.set(key, _text(value))
        if not entity.get("id"):
            if entity.get("create") is None:
                raise ValueError(f"the '{dataset}' entity updates: give its id")
            entity.set("id", make_uuid())
    return used


def _walk(element, leaves, templates, entity_nodes) -> None:
    """Questions, repeat templates and entities of one container, not inside its repeats."""
    repeated = {c.tag for c in element if c.get(JR_TEMPLATE) is not None}
    for child in element:
        if child.tag in repeated:
            if child.get(JR_TEMPLATE) is not None:
                templates.append(child)
        elif child.tag == "entity" and element.tag == "meta":
            entity_nodes.append(child)
        elif len(child):
            _walk(child, leaves, templates, entity_nodes)
        else:
            leaves.setdefault(child.tag, []).append(child)


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _drop_non_relevant(root, relevance, answered) -> None:
    paths = _paths(root)
    doomed = [
        element
        for path, test in relevance
        for element in paths.get(path, ())
        if not _boolean(test(_Context(element, paths)))
    ]
    gone = {node for element in doomed for node in element.iter()}
    wrong = [name for name, node in answered if node in gone]
    if wrong:
        raise ValueError(f"answered, but not relevant with these answers: {wrong}")
    for element in doomed:
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)


def _paths(root: etree._Element) -> dict[str, list[etree._Element]]:
    """Every element by its instance path (/data/group/name), repeat instances in order."""
    found: dict[str, list[etree._Element]] = {}

    def visit(element, path):
        found.setdefault(path, []).append(element)
        for child in element:
            visit(child, f"{path}/{child.tag}")

    visit(root, f"/{root.tag}")
    return found


# ---- the XPath of `relevant`: enough for what pyxform writes from XLSForms ----------------

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'[^']*'|\"[^\"]*\")|(?P<number>\d+(?:\.\d+)?)"
    r"|(?P<op>!=|<=|>=|=|<|>|\(|\)|,)|(?P<function>[A-Za-z][\w:-]*(?=\s*\())"
    r"|(?P<path>(?:/|\.\.?|[A-Za-z_])[\w./:-]*))"
)
_FUNCTIONS: dict[str, Callable] = {
    "selected": lambda items, value: _string(value) in _string(items).split(),
    "count-selected": lambda items: float(len(_string(items).split())),
    "not": lambda value: not _boolean(value),
    "true": lambda: True,
    "false": lambda: False,
    "string": lambda value: _string(value),
    "string-length": lambda value: float(len(_string(value))),
}
_COMPARE = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _compile(expression: str) -> Callable[[_Context], object]:
    """A function of the context element; a construct it does not know is a ValueError."""
    tokens = []
    position = 0
    text = expression.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"cannot read relevant={expression!r} at {text[position:]!r}")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "path" and value in ("and", "or"):
            kind = value
        tokens.append((kind, value))
        position = match.end()
    parser = _Parser(tokens, expression)
    compiled = parser.expression()
    if parser.position != len(tokens):
        raise ValueError(f"cannot read relevant={expression!r}")
    return compiled


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], source: str):
        self.tokens, self.position, self.source = tokens, 0, source

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self, value: str | None = None) -> tuple[str, str]:
        token = self._peek()
        if token is None or (value is not None and token[1] != value):
            raise ValueError(f"cannot read relevant={self.source!r}: expected {value}")
        self.position += 1
        return token

    def expression(self):
        left = self._and()
        while self._peek() and self._peek()[0] == "or":
            self._take()
            right, first = self._and(), left
            left = lambda c, a=first, b=right: _boolean(a(c)) or _boolean(b(c))  # noqa: E731
        return left

    def _and(self):
        left = self._comparison()
        while self._peek() and self._peek()[0] == "and":
            self._take()
            right, first = self._comparison(), left
            left = lambda c, a=first, b=right: _boolean(a(c)) and _boolean(b(c))  # noqa: E731
        return left

    def _comparison(self):
        left = self._primary()
        token = self._peek()
        if token and token[0] == "op" and token[1] in _COMPARE:
            self._take()
            right, test = self._primary(), _COMPARE[token[1]]
            return lambda c, a=left, b=right: _compared(test, token[1], a(c), b(c))
        return left

    def _primary(self):
        kind, value = self._take()
        if kind == "string":
            return lambda _c, v=value[1:-1]: v
        if kind == "number":
            return lambda _c, v=float(value): v
        if kind == "path":
            return lambda c, p=value: _value_at(c, p)
        if kind == "function":
            function = _FUNCTIONS.get(value)
            if function is None:
                raise ValueError(f"relevant={self.source!r}: no function {value}() here")
            self._take("(")
            arguments = []
            while self._peek() and self._peek()[1] != ")":
                arguments.append(self.expression())
                if self._peek() and self._peek()[1] == ",":
                    self._take(",")
            self._take(")")
            return lambda c, f=function, a=tuple(arguments): f(*(x(c) for x in a))
        if value == "(":
            inner = self.expression()
            self._take(")")
            return inner
        raise ValueError(f"cannot read relevant={self.source!r} at {value!r}")


@dataclass(frozen=True)
class _Context:
    element: etree._Element  #: the node the bind is on
    paths: dict[str, list[etree._Element]]  #: the instance, by path


def _value_at(context: _Context, path: str) -> str:
    """A node's string value; a node not there reads as '' (JavaRosa keeps every node)."""
    if path.startswith("/"):
        nodes = context.paths.get(path.rstrip("/"))
        return (nodes[0].text or "") if nodes else ""
    node = context.element
    for step in path.split("/"):
        if step == "..":
            node = node.getparent()
        elif step != ".":
            node = next((c for c in node if c.tag == step), None)
        if node is None:
            return ""
    return node.text or ""


def _string(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return value


def _number(value) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _boolean(value) -> bool:
    if isinstance(value, float):
        return value != 0 and not math.isnan(value)
    return bool(value)


def _compared(test, op: str, left, right) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return test(_boolean(left), _boolean(right))
    if op in ("=", "!=") and not (isinstance(left, float) or isinstance(right, float)):
        return test(_string(left), _string(right))
    return test(_number(left), _number(right))
