"""Large submissions stream to storage: chunked bodies are accepted, memory stays flat."""

from __future__ import annotations

import tracemalloc
import uuid

import requests
from sqlalchemy.orm import selectinload

from server.extensions import db
from server.submissions.models import Submission
from tests.factories import Factories, app_user_with_forms

VIDEO_FORM = """
| survey   |        |        |        |
|          | type   | name   | label  |
|          | video  | clip   | Clip   |
| settings |        |        |        |
|          | form_id | version |       |
|          | clips  | 1      |        |
"""

SIZE = 40 * 1024 * 1024
CHUNK = 64 * 1024


def _chunked_body(boundary: str, xml: bytes):
    """A multipart body produced piece by piece, as a phone's upload arrives."""
    yield (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="xml_submission_file"; '
            f'filename="clip.xml"\r\nContent-Type: text/xml\r\n\r\n'
        ).encode()
        + xml
        + b"\r\n"
    )
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="clip.mp4"; '
        f'filename="clip.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
    ).encode()
    block = b"v" * CHUNK
    for _ in range(SIZE // CHUNK):
        yield block
    yield f"\r\n--{boundary}--\r\n".encode()


def test_a_40_mb_chunked_upload_is_stored_without_holding_it_in_memory(app, live_server):
    with app.app_context():
        make = Factories()
        project = make.project()
        make.form(VIDEO_FORM)
        _, token = app_user_with_forms(project)
    xml = (
        b'<data id="clips" version="1"><clip>clip.mp4</clip>'
        b"<meta><instanceID>uuid:big</instanceID></meta></data>"
    )
    boundary = uuid.uuid4().hex
    tracemalloc.start()
    try:
        response = requests.post(
            f"{live_server}/v1/key/{token}/projects/1/submission",
            data=_chunked_body(boundary, xml),  # a generator: requests sends it chunked
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=120,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 201, response.text
    assert peak < 12 * 1024 * 1024, f"peak Python memory {peak / 2**20:.1f} MiB for a 40 MiB body"
    with app.app_context():
        query = db.select(Submission).options(selectinload(Submission.attachments))
        submission = db.session.scalar(query)
        (clip,) = submission.attachments
        assert clip.size == SIZE and submission.complete
