"""XLSForm → XForm with pyxform's library API, with every problem located for a designer.

pyxform states most problems as "[row : N] On the 'survey' sheet, the 'relevant' value
is invalid ..."; some (an unknown type, a missing choice list, a label-less question)
name only the offending value. For those we look the value up in the workbook so the
designer still gets a sheet, a row and a column.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, fields
from pathlib import PurePath

from pyxform.errors import PyXFormError
from pyxform.xls2json_backends import get_xlsform
from pyxform.xls2xform import convert

from server.forms.problems import FormProblem, FormRejected, rejected

SPREADSHEET_TYPES = {".xlsx": ".xlsx", ".xlsm": ".xlsx", ".xls": ".xls", ".csv": ".csv"}
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MAX_ZIP_ENTRIES = 2000

ROW_RE = re.compile(r"\[row\s*:\s*(\d+)\]")
SHEET_RE = re.compile(r"On the '([^']+)' sheet")
COLUMN_RE = re.compile(r"the '([^']+)' value")
QUOTED_RE = re.compile(r"'([^']+)'")


@dataclass
class Conversion:
    xform: str
    warnings: list[FormProblem]


def spreadsheet_kind(filename: str, data: bytes) -> str:
    """The pyxform file type for this upload, checked against its first bytes."""
    suffix = PurePath(filename).suffix.lower()
    kind = SPREADSHEET_TYPES.get(suffix)
    if kind is None:
        raise rejected(
            f"'{filename}' is not an XLSForm or XForm: upload an .xlsx, .xls, .csv or .xml file."
        )
    looks_like = (
        ".xlsx"
        if data.startswith(ZIP_MAGIC)
        else ".xls"
        if data.startswith(OLE_MAGIC)
        else ".csv"
        if _is_text(data)
        else None
    )
    if looks_like != kind:
        raise rejected(
            f"'{filename}' is not a valid {suffix} file (its content does not match its "
            "extension, or it is damaged). Save it again from your spreadsheet program."
        )
    return kind


def _is_text(data: bytes) -> bool:
    try:
        data[:65536].decode("utf-8-sig")
    except UnicodeDecodeError:
        # A 64 KiB cut may split a multi-byte character; allow that only at the end.
        try:
            data[:65530].decode("utf-8-sig")
        except UnicodeDecodeError:
            return False
    return b"\x00" not in data[:65536]


def check_zip_bomb(data: bytes, max_uncompressed: int) -> None:
    """Refuse .xlsx files that would expand past the cap before anything unzips them."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile:
        raise rejected(
            "The .xlsx file is damaged and cannot be opened. Save it again from your "
            "spreadsheet program."
        ) from None
    total = sum(entry.file_size for entry in entries)
    if len(entries) > MAX_ZIP_ENTRIES or total > max_uncompressed:
        raise rejected(
            f"The .xlsx file expands to {total // (1024 * 1024)} MB in {len(entries)} parts, "
            f"more than the {max_uncompressed // (1024 * 1024)} MB allowed for a form."
        )


def xlsform_to_xform(
    data: bytes, filename: str, *, max_uncompressed: int = 60 * 1024 * 1024
) -> Conversion:
    """Convert an uploaded XLSForm; raise FormRejected with located problems."""
    kind = spreadsheet_kind(filename, data)
    if kind == ".xlsx":
        check_zip_bomb(data, max_uncompressed)
    try:
        workbook = get_xlsform(io.BytesIO(data), file_type=kind)
    except PyXFormError as error:
        raise rejected(f"The spreadsheet could not be read: {error}") from None
    except Exception as error:  # noqa: BLE001 - readers raise anything on corrupt files
        raise rejected(
            f"The spreadsheet could not be read ({type(error).__name__}). "
            "Save it again as .xlsx from your spreadsheet program."
        ) from None
    workbook.fallback_form_name = _fallback_form_id(filename)
    raw_warnings: list[str] = []
    try:
        result = convert(
            {f.name: getattr(workbook, f.name) for f in fields(workbook)},
            warnings=raw_warnings,
        )
    except PyXFormError as error:
        raise FormRejected([locate(str(error), workbook, level="error")]) from None
    except Exception as error:  # noqa: BLE001 - pyxform has unwrapped failures too
        raise rejected(f"The XLSForm could not be converted: {error}") from None
    return Conversion(
        xform=result.xform,
        warnings=[locate(w, workbook, level="warning") for w in raw_warnings],
    )


def _fallback_form_id(filename: str) -> str:
    """Central's rule: without a settings form_id, the file name is the form id."""
    stem = re.sub(r"[^A-Za-z0-9_.\-]", "_", PurePath(filename).stem) or "form"
    return stem if re.match(r"[A-Za-z_]", stem) else f"_{stem}"


def locate(message: str, workbook, level: str, source: str = "pyxform") -> FormProblem:
    """Turn a pyxform message into a FormProblem with sheet, row and column."""
    message = message.strip()
    row = ROW_RE.search(message)
    sheet = SHEET_RE.search(message)
    column = COLUMN_RE.search(message)
    if row:
        return FormProblem(
            message=ROW_RE.sub("", message, count=1).strip(),
            level=level,
            source=source,
            sheet=sheet.group(1) if sheet else "survey",
            row=int(row.group(1)),
            column=column.group(1) if column else _guess_column(message),
        )
    found = find_in_workbook(message, workbook)
    return FormProblem(message=message, level=level, source=source, **found)


def _rows(workbook, sheet: str):
    return enumerate(getattr(workbook, sheet, None) or [], start=2)


#: Words in row-numbered pyxform messages that name no column, and the column they mean.
COLUMN_HINTS = (
    ("list name", "type"),
    ("question type", "type"),
    ("no type", "type"),
    ("calculation", "calculation"),
    ("choice_filter", "choice_filter"),
    ("constraint", "constraint"),
    ("relevant", "relevant"),
    ("label", "label"),
    ("name", "name"),
)


def _guess_column(message: str) -> str | None:
    lowered = message.lower()
    return next((column for words, column in COLUMN_HINTS if words in lowered), None)


def find_in_workbook(message: str, workbook) -> dict:
    """Best effort: the row a row-less message is about."""
    lowered = message.lower()
    quoted = QUOTED_RE.findall(message)
    if "unknown question type" in lowered and quoted:
        for row, cells in _rows(workbook, "survey"):
            if (cells.get("type") or "").strip() == quoted[0]:
                return {"sheet": "survey", "row": row, "column": "type"}
    if "choices sheet" in lowered or "list name" in lowered or "choice list" in lowered:
        wanted = set(quoted)
        for row, cells in _rows(workbook, "survey"):
            parts = (cells.get("type") or "").split()
            if len(parts) < 2 or not parts[0].startswith(("select_", "rank")):
                continue
            if (not wanted or parts[1] in wanted) and not _choice_list_exists(workbook, parts[1]):
                return {"sheet": "survey", "row": row, "column": "type"}
    for name in quoted:
        for row, cells in _rows(workbook, "survey"):
            if cells.get("name") == name:
                column = "label" if "label" in lowered else "name"
                return {"sheet": "survey", "row": row, "column": column}
    return {}


def _choice_list_exists(workbook, list_name: str) -> bool:
    return any(
        (cells.get("list_name") or cells.get("list name")) == list_name
        for _, cells in _rows(workbook, "choices")
    )


VALIDATE_COLUMN_HINTS = (
    ("display condition", "relevant"),
    ("relevant", "relevant"),
    ("constraint", "constraint"),
    ("calculate", "calculation"),
    ("calculation", "calculation"),
    ("choice_filter", "choice_filter"),
    ("itemset", "choice_filter"),
    ("required", "required"),
)


def locate_in_xform_names(message: str, workbook, source: str) -> FormProblem:
    """Locate an ODK Validate message by the question it names (${name} or /data/name)."""
    names = re.findall(r"\$\{([A-Za-z_][\w.\-]*)\}", message)
    names += [p.rsplit("/", 1)[-1] for p in re.findall(r"(?:/[A-Za-z_][\w.\-]*){2,}", message)]
    lowered = message.lower()
    column = next((col for words, col in VALIDATE_COLUMN_HINTS if words in lowered), None)
    for name in names:
        for row, cells in _rows(workbook, "survey"):
            if cells.get("name") == name:
                return FormProblem(
                    message=message, source=source, sheet="survey", row=row, column=column
                )
    return FormProblem(message=message, source=source)


def load_workbook_for_locating(data: bytes, filename: str):
    try:
        return get_xlsform(io.BytesIO(data), file_type=spreadsheet_kind(filename, data))
    except Exception:  # noqa: BLE001 - only used to improve a message
        return None
