"""Submission bodies split in memory give what werkzeug's parser gives, or are left to it."""

from __future__ import annotations

import io
import random

import pytest
from werkzeug.formparser import MultiPartParser

from server.openrosa.multipart import split
from tests.factories import Factories, app_user_with_forms
from tests.test_openrosa_submissions import PHOTO_FORM, submission_xml

BOUNDARY = b"----CollectBoundary7MA4YWxk"


def body(*parts: bytes, boundary: bytes = BOUNDARY, epilogue: bytes = b"\r\n") -> bytes:
    """Parts joined as OkHttp (ODK Collect) and browsers (Enketo) join them."""
    dash = b"--" + boundary
    return b"".join(dash + b"\r\n" + part + b"\r\n" for part in parts) + dash + b"--" + epilogue


def part(name: str, content: bytes, filename: str | None = None, content_type=b"") -> bytes:
    disposition = f'Content-Disposition: form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = disposition.encode()
    if content_type:
        head += b"\r\nContent-Type: " + content_type
    return head + b"\r\n\r\n" + content


XML = submission_xml()
COLLECT = body(
    part("xml_submission_file", XML, "form.xml", b"text/xml"),
    part("p.jpg", b"\xff\xd8\r\n--not-the-boundary\r\n\xff\xd9", "p.jpg", b"image/jpeg"),
)


def werkzeug_files(data: bytes, boundary: bytes = BOUNDARY, max_parts: int | None = None):
    """What request.files holds for this body (a malformed one: nothing, as werkzeug does)."""
    parser = MultiPartParser(stream_factory=lambda **_: io.BytesIO(), max_form_parts=max_parts)
    try:
        _, files = parser.parse(io.BytesIO(data), boundary, len(data))
    except ValueError:
        return []
    return _described(files)


def _described(files) -> list:
    return [
        (key, f.filename, f.name, f.mimetype, list(f.headers.items()), f.stream.read())
        for key, f in files.items(multi=True)
    ]


PLAIN = {
    "collect": COLLECT,
    "enketo-literal-filename": body(
        part("xml_submission_file", XML, "xml_submission_file", b"text/xml")
    ),
    "no-content-type": body(part("xml_submission_file", XML, "x.xml"), part("a.png", b"", "a")),
    "same-name-twice": body(
        part("xml_submission_file", XML, "x.xml"),
        part("p.jpg", b"one", "p.jpg"),
        part("p.jpg", b"two", "p.jpg"),
    ),
    "unicode-filename": body(part("xml_submission_file", XML, "été.xml", b"text/xml")),
    "rfc2231-filename": body(
        b"Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''%C3%A9t%C3%A9.jpg\r\n\r\nx"
    ),
    "empty-filename": body(part("f", b"x", "")),
    "no-epilogue-newline": body(part("f", b"x", "f"), epilogue=b""),
    "epilogue-text": body(part("f", b"x", "f"), epilogue=b"\r\nthat was all\r\n"),
    "content-type-params": body(part("f", b"x", "f", b"Text/XML; charset=utf-8")),
    "crlf-at-the-end-of-content": body(part("f", b"x\r\n", "f"), part("g", b"\r", "g")),
}

NOT_PLAIN = {
    "lf-line-ends": COLLECT.replace(b"\r\n", b"\n"),
    "a-form-field": body(part("xml_submission_file", XML, "x.xml"), part("*isIncomplete*", b"y")),
    "boundary-inside-a-file": body(part("f", b"a\n--" + BOUNDARY + b"\r\nb", "f")),
    "boundary-in-the-epilogue": body(part("f", b"x", "f"), epilogue=b"\r\n--" + BOUNDARY),
    "preamble": b"preamble\r\n" + COLLECT,
    "no-closing-delimiter": COLLECT[: COLLECT.rindex(b"--" + BOUNDARY)],
    "truncated": COLLECT[:200],
    "no-blank-line": body(b'Content-Disposition: form-data; name="f"; filename="f"'),
    "no-disposition": body(b"Content-Type: text/xml\r\n\r\n<data/>"),
    "folded-header": body(b'Content-Disposition: form-data;\r\n name="f"; filename="f"\r\n\r\nx'),
    "bare-cr-in-headers": body(
        b'Content-Disposition: form-data; name="f"; filename="f"\rX: y\r\n\r\nx'
    ),
    "latin-1-header": body(b'Content-Disposition: form-data; name="f"; filename="\xe9"\r\n\r\nx'),
    "spaces-after-delimiter": COLLECT.replace(BOUNDARY + b"\r\n", BOUNDARY + b"  \r\n", 1),
    "empty": b"",
}


@pytest.mark.parametrize("case", PLAIN, ids=list(PLAIN))
def test_plain_bodies_are_split_as_werkzeug_splits_them(case):
    files = split(PLAIN[case], BOUNDARY, None)
    assert files is not None
    assert _described(files) == werkzeug_files(PLAIN[case])


@pytest.mark.parametrize("case", NOT_PLAIN, ids=list(NOT_PLAIN))
def test_other_bodies_are_left_to_werkzeug(case):
    assert split(NOT_PLAIN[case], BOUNDARY, None) is None


def test_more_parts_than_allowed_are_left_to_werkzeug():
    data = body(*[part(f"f{i}", b"x", f"f{i}") for i in range(3)])
    assert split(data, BOUNDARY, 2) is None
    assert len(split(data, BOUNDARY, 3)) == 3


def test_mangled_bodies_are_split_as_werkzeug_splits_them_or_left_to_it():
    """Bytes cut, doubled or replaced by the characters multipart syntax is made of."""
    rng = random.Random(20261128)
    pieces = [b"\r", b"\n", b"\r\n", b"--", b" ", b"\t", b'"', b";", b":", b"--" + BOUNDARY]
    split_here = 0
    for _ in range(3000):
        data = bytearray(rng.choice(list(PLAIN.values())))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data) + 1)
            cut = rng.choice([0, 0, 1, 2])
            data[at : at + cut] = rng.choice(pieces)
        files = split(bytes(data), BOUNDARY, None)
        if files is not None:
            split_here += 1
            assert _described(files) == werkzeug_files(bytes(data)), bytes(data)
    assert split_here > 500  # most mangled bytes land in content, which stays plain


def test_a_body_with_lf_line_ends_is_still_received(app, client):
    with app.app_context():
        make = Factories()
        project = make.project()
        make.form(PHOTO_FORM)
        _, token = app_user_with_forms(project)
    response = client.post(
        f"/v1/key/{token}/projects/1/submission",
        data=COLLECT.replace(b"\r\n", b"\n"),
        content_type=f"multipart/form-data; boundary={BOUNDARY.decode()}",
    )
    assert response.status_code == 201, response.data
