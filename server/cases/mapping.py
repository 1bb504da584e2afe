"""From form to case: the mapping a designer writes in the spreadsheet, read from the XForm.

Designers follow ODK's entities convention: an `entities` sheet whose `list_name` is a
case-schema dataset (`cases`, `movement_events`, ...) and a `save_to` column naming the
case-schema field (`cases#prs_FirstName`). pyxform turns that into `<meta><entity>` blocks
and `entities:saveto` binds; we read it back from the XForm (so XForm uploads work too),
check it against the field table, and keep it as JSON on the form version.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from lxml import etree

from server.cases.fields import MULTI_KINDS, Field, Kind, Record, fields_of
from server.forms.problems import FormProblem
from server.forms.xform import NS, local_name, primary_instance_root

ENTITIES_NS = "http://www.opendatakit.org/xforms/entities"
SAVETO = f"{{{ENTITIES_NS}}}saveto"

#: XForm bind types, grouped by what a case-schema field can take from them.
TEXTUAL = {"string", "", None}
NUMERIC = {"int", "integer", "decimal"}
DATES = {"date", "dateTime"}


@dataclass(frozen=True)
class Question:
    path: str  #: absolute instance path, /data/group/name
    name: str
    bind_type: str | None
    multiple: bool  #: a select_multiple (body <select>)


def _path(element: etree._Element) -> str:
    parts = []
    while element is not None and isinstance(element.tag, str):
        parts.append(local_name(element))
        element = element.getparent()
        if element is not None and local_name(element) == "instance":
            break
    return "/" + "/".join(reversed(parts))


def _entities(instance_root: etree._Element) -> dict[str, tuple[str, str]]:
    """Container path → (dataset, entity element path) for each entity declaration."""
    found = {}
    for element in instance_root.iter():
        if not isinstance(element.tag, str) or local_name(element) != "entity":
            continue
        meta = element.getparent()
        if meta is None or local_name(meta) != "meta" or element.get("dataset") is None:
            continue
        container = _path(meta.getparent())
        if container in found:  # a repeat's template and its first instance
            continue
        found[container] = (element.get("dataset"), _path(element))
    return found


def _questions(root: etree._Element) -> dict[str, tuple[Question, str]]:
    """Instance path → (question, save_to) for each bind with entities:saveto."""
    multiple = {
        element.get("ref")
        for element in root.iter(f"{{{NS['xf']}}}select", "select")
        if element.get("ref")
    }
    found = {}
    for bind in root.iter(f"{{{NS['xf']}}}bind", "bind"):
        saveto = bind.get(SAVETO)
        nodeset = bind.get("nodeset")
        if not saveto or not nodeset:
            continue
        question = Question(
            path=nodeset,
            name=nodeset.rsplit("/", 1)[-1],
            bind_type=bind.get("type"),
            multiple=nodeset in multiple,
        )
        found[nodeset] = (question, saveto)
    return found


class MappingProblems(Exception):
    def __init__(self, problems: list[FormProblem]):
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def read_mapping(root: etree._Element, workbook=None) -> tuple[dict | None, list[FormProblem]]:
    """The form's case mapping as a JSON-able dict (None: it maps nothing), and warnings.

    Entity lists outside the case schema (any ODK entities form) are accepted with a
    warning. Raises MappingProblems, each located in the spreadsheet when there is one.
    """
    instance_root = primary_instance_root(root)
    entities = _entities(instance_root)
    questions = _questions(root)
    repeats = {
        element.get("nodeset")
        for element in root.iter(f"{{{NS['xf']}}}repeat", "repeat")
        if element.get("nodeset")
    }
    if not entities and not questions:
        return None, []
    locate = _Locator(workbook)
    problems: list[FormProblem] = []
    datasets: dict[str, dict] = {}
    warnings: list[FormProblem] = []
    for container, (dataset, entity_path) in sorted(entities.items()):
        if dataset not in Record.__members__.values():
            close = difflib.get_close_matches(dataset, [r.value for r in Record], n=1)
            if close:
                problems.append(
                    locate.entity(
                        dataset,
                        f"The entity list '{dataset}' is not part of the case schema. "
                        f"Did you mean '{close[0]}'?",
                    )
                )
            else:
                warnings.append(
                    locate.entity(
                        dataset,
                        f"The entity list '{dataset}' is not part of the case schema "
                        f"({', '.join(r.value for r in Record)}): its submissions are "
                        "stored and exported, but make no case records.",
                        level="warning",
                    )
                )
            continue
        in_repeat = any(container == r or container.startswith(r + "/") for r in repeats)
        if dataset == Record.CASES and in_repeat:
            problems.append(
                locate.entity(
                    dataset,
                    "The 'cases' entity list must be saved once per submission, "
                    "not from inside a repeat.",
                )
            )
            continue
        datasets[container] = {
            "dataset": dataset,
            "container": container,
            "entity": entity_path,
            "repeat": in_repeat,
            "fields": [],
        }
    for path, (question, saveto) in sorted(questions.items()):
        container = max((c for c in entities if path.startswith(c + "/")), key=len, default=None)
        target = datasets.get(container)
        if target is None:
            continue  # pyxform already refuses save_to without an entity; bad dataset reported
        record = Record(target["dataset"])
        field = fields_of(record).get(saveto)
        if field is None:
            problems.append(locate.question(question.name, _unknown_field(saveto, record)))
            continue
        mismatch = _type_mismatch(question, field)
        if mismatch:
            problems.append(locate.question(question.name, mismatch))
            continue
        target["fields"].append(
            {
                "path": path[len(container) + 1 :],
                "field": field.name,
            }
        )
    has_cases = any(d["dataset"] == Record.CASES for d in datasets.values())
    if datasets and not has_cases:
        first = next(iter(datasets.values()))["dataset"]
        problems.append(
            locate.entity(
                first,
                f"The entity list '{first}' adds records to a case, so the form must also "
                "save to the 'cases' entity list (a new case, or an update of one chosen "
                "from the case list).",
            )
        )
    if problems:
        raise MappingProblems(problems)
    return ({"datasets": list(datasets.values())} if datasets else None), warnings


def _unknown_field(saveto: str, record: Record) -> str:
    known = fields_of(record)
    lowered = {name.lower(): name for name in known}
    guess = lowered.get(saveto.lower()) or next(
        iter(difflib.get_close_matches(saveto, list(known), n=1)), None
    )
    elsewhere = [r.value for r in Record if saveto in fields_of(r) and r is not record]
    message = f"'{saveto}' is not a field of the '{record.value}' entity list."
    if guess:
        message += f" Did you mean '{guess}'?"
    elif elsewhere:
        message += f" It belongs to '{elsewhere[0]}': write '{elsewhere[0]}#{saveto}'."
    else:
        message += " See the case-schema field list in xlsforms/README.md."
    return message


def _type_mismatch(question: Question, field: Field) -> str | None:
    multi = field.kind in MULTI_KINDS
    if question.multiple and not multi:
        return (
            f"'{question.name}' is a select_multiple, but '{field.name}' holds one value. "
            "Use select_one, or save to a field that holds several values."
        )
    kind = field.kind
    bind = question.bind_type
    if kind == Kind.DATE and bind not in DATES | TEXTUAL:
        return f"'{field.name}' is a date, but '{question.name}' is of type {bind}."
    if kind in (Kind.INTEGER, Kind.DECIMAL) and bind not in NUMERIC | TEXTUAL:
        return f"'{field.name}' is a number, but '{question.name}' is of type {bind}."
    if kind == Kind.INTEGER and bind == "decimal":
        return f"'{field.name}' is a whole number, but '{question.name}' is a decimal."
    if kind not in (Kind.DATE, Kind.INTEGER, Kind.DECIMAL, Kind.TEXT) and bind not in TEXTUAL:
        return (
            f"'{field.name}' takes a value from a list, but '{question.name}' is of type "
            f"{bind}. Use a select_one or select_multiple question."
        )
    return None


class _Locator:
    """Turn a problem about a question or an entity list into sheet/row/column."""

    def __init__(self, workbook):
        self.workbook = workbook

    def _rows(self, sheet: str):
        return enumerate(getattr(self.workbook, sheet, None) or [], start=2)

    def question(self, name: str, message: str, level: str = "error") -> FormProblem:
        for row, cells in self._rows("survey"):
            if cells.get("name") == name:
                return FormProblem(
                    message,
                    level=level,
                    source="mapping",
                    sheet="survey",
                    row=row,
                    column="save_to",
                )
        return FormProblem(message, level=level, source="mapping")

    def entity(self, dataset: str, message: str, level: str = "error") -> FormProblem:
        for row, cells in self._rows("entities"):
            if (cells.get("list_name") or cells.get("dataset")) == dataset:
                return FormProblem(
                    message,
                    level=level,
                    source="mapping",
                    sheet="entities",
                    row=row,
                    column="list_name",
                )
        return FormProblem(message, level=level, source="mapping")
