"""What is wrong with an uploaded form, said so a form designer can find it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FormProblem:
    """One error or warning, located by sheet, row and column where that is known."""

    message: str
    level: str = "error"  # "error" refuses the upload; "warning" is shown, not fatal
    source: str = "upload"  # upload | pyxform | odk_validate
    sheet: str | None = None
    row: int | None = None
    column: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def location(self) -> str:
        parts = []
        if self.sheet:
            parts.append(f"sheet '{self.sheet}'")
        if self.row:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column '{self.column}'")
        return ", ".join(parts)

    def __str__(self) -> str:
        return f"[{self.location}] {self.message}" if self.location else self.message


class FormRejected(Exception):
    """The upload is refused; nothing was stored."""

    def __init__(self, problems: list[FormProblem], status: int = 400):
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems
        self.status = status


def rejected(message: str, **location) -> FormRejected:
    return FormRejected([FormProblem(message=message, **location)])
