"""ODK Validate: JavaRosa, the form engine inside ODK Collect, run on every form.

The jar ships inside the pyxform wheel. It needs `java`; without it, validation is
skipped (setting "auto") or refused (setting "on").
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pyxform.validators.odk_validate import ODKValidateError, check_xform


class ValidatorUnavailable(RuntimeError):
    pass


def java_available() -> bool:
    return shutil.which("java") is not None


def should_validate(setting: str) -> bool:
    if setting in ("off", False, "false", 0):
        return False
    if setting in ("on", True, "true", 1):
        if not java_available():
            raise ValidatorUnavailable("ODK Validate is required but `java` is not on PATH.")
        return True
    return java_available()


def validate_xform(xml: str) -> tuple[list[str], list[str]]:
    """Run ODK Validate; return (errors, warnings) as cleaned lines of text."""
    with tempfile.TemporaryDirectory(prefix="casebridge-validate-") as folder:
        path = Path(folder) / "form.xml"
        path.write_text(xml, encoding="utf-8")
        try:
            raw_warnings = check_xform(str(path))
        except ODKValidateError as error:
            text = str(error).replace("ODK Validate Errors:", "").strip()
            return [_clean(text, folder)], []
    warnings = [_clean(w.replace("ODK Validate Warnings:", ""), folder) for w in raw_warnings]
    return [], [w for w in warnings if w]


NOISE = {
    ">> XForm is invalid.",
    "The following files failed validation:",
    "${form}.xml",
    "Result: Invalid",
    "Xform is valid",
}


def _clean(text: str, folder: str) -> str:
    """Drop the temporary path and JavaRosa's stack noise from a message."""
    lines = []
    for line in text.replace(folder + "/", "").splitlines():
        line = line.strip()
        if not line or line.startswith(("at ", "org.", "java.")) or line in NOISE:
            continue
        line = line.removeprefix(": ").strip()
        lines.append(line)
    return "\n".join(lines)
