"""Test factories: rows made through the same operations the app uses."""

from __future__ import annotations

import contextlib
import io
import itertools
from collections.abc import Iterator

from openpyxl import Workbook

from server.auth.operations import create_user
from server.extensions import db
from server.forms import operations as ops
from server.projects.operations import add_member, create_project, default_project

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


def md_table(markdown: str) -> dict[str, list[list[str]]]:
    """Parse pyxform-style markdown (| sheet | / | | col | col |) into {sheet: rows}."""
    sheets: dict[str, list[list[str]]] = {}
    current = None
    for line in markdown.strip().splitlines():
        line = line.strip()
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0]:
            current = sheets.setdefault(cells[0], [])
        if current is not None and any(cells[1:]):
            current.append(cells[1:])
    return sheets


def xlsx_from_md(markdown: str) -> bytes:
    """A real .xlsx file from a markdown-table XLSForm, so tests go through openpyxl."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, rows in md_table(markdown).items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append([cell if cell != "" else None for cell in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def simple_form_md(form_id: str = "household", version: str = "1", extra: str = "") -> str:
    return f"""
    | survey   |                    |        |                    |
    |          | type               | name   | label::English (en) | label::French (fr) |
    |          | text               | q_name | What is it?        | Qu'est-ce ?        |
    |          | select_one yes_no  | q_ok   | Is it ok?          | Est-ce bon ?       |
    {extra}
    | choices  |                    |        |                    |
    |          | list_name          | name   | label::English (en) | label::French (fr) |
    |          | yes_no             | yes    | Yes                | Oui                |
    |          | yes_no             | no     | No                 | Non                |
    | settings |                    |        |                    |
    |          | form_id            | version | form_title        |
    |          | {form_id}          | {version} | Household        |
    """


class Factories:
    def user(
        self, role: str = "designer", name: str | None = None, projects=None, password=PASSWORD
    ):
        user = create_user(name or f"{role}{next(_counter)}", role, password)
        for project in projects if projects is not None else [self.project()]:
            add_member(project, user)
        db.session.commit()
        return user

    def project(self, name: str | None = None):
        project = default_project() if name is None else create_project(name)
        db.session.commit()
        return project

    def form(self, markdown: str | None = None, project=None, draft: bool = False, media=()):
        project = project or self.project()
        upload = ops.Upload("form.xlsx", xlsx_from_md(markdown or simple_form_md()))
        result = ops.publish_form(project, ops.prepare_form(upload), draft=draft, media=list(media))
        db.session.commit()
        return result.form


def counts() -> dict[str, int]:
    """Rows per table: to show that a refused upload stored nothing."""
    return {
        table.name: db.session.execute(db.select(db.func.count()).select_from(table)).scalar()
        for table in db.metadata.sorted_tables
    }


def app_user_with_forms(project, forms=None):
    """An app user of `project` given every form (or `forms`); returns (app_user, token)."""
    from server.appusers.operations import create_app_user, grant_form
    from server.forms.models import Form

    app_user, token = create_app_user(project, "Phone 1")
    chosen = (
        forms
        if forms is not None
        else db.session.scalars(db.select(Form).where(Form.project_id == project.id)).all()
    )
    for form in chosen:
        grant_form(app_user, form)
    db.session.commit()
    return app_user, token


def multipart(
    xml: bytes, files: dict[str, bytes] | None = None, incomplete=False, filename="submission.xml"
):
    """A submission body as Collect sends it: xml_submission_file plus one part per file."""
    data = {"xml_submission_file": (io.BytesIO(xml), filename, "text/xml")}
    for name, content in (files or {}).items():
        data[name] = (io.BytesIO(content), name)
    if incomplete:
        data["*isIncomplete*"] = "yes"
    return data


@contextlib.contextmanager
def csrf_protected_client(
    app, user_name: str | None = None, config: str = "default", **settings
) -> Iterator:
    """A test client of a second app configured as in production (CSRF checked; the test
    app turns it off; `config="production"` for the production class itself), on the test
    database and Redis; logged in as `user_name` with the login page's token when given."""
    from server import create_app

    protected = create_app(
        config,
        {
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
            "SECRET_KEY": "csrf-test-secret",
            **settings,
        },
    )
    client = protected.test_client()
    if user_name is not None:
        token = csrf_token(client.get("/login").text)
        client.post(
            "/login", data={"username": user_name, "password": PASSWORD, "csrf_token": token}
        )
    try:
        yield client
    finally:
        with protected.app_context():
            db.engine.dispose()


def csrf_token(page: str) -> str:
    """The CSRF token a page's form carries."""
    return page.split('name="csrf_token" value="')[1].split('"')[0]
