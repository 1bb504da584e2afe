"""Self-check of tests/openrosa_clients.py against a tiny fake OpenRosa server (no app, no DB).

The fake server challenges every request with RFC 2617 Digest (MD5, qop=auth), verifies each
digest response itself, rejects replayed nc values, and records what arrived.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.openrosa_clients import (
    CollectClient,
    EnketoClient,
    OpenRosaClientError,
    collect_chunks,
    collect_date,
    enketo_batches,
)

USER, PASSWORD, REALM, OPAQUE = "ana", "s3cret pw", "casebridge", "op4que"
PREFIX = "/v1/projects/1"
FORM = b'<?xml version="1.0"?><h:html xmlns:h="http://www.w3.org/1999/xhtml"><h:head/></h:html>'
MEDIA = b"name,label\na,A\n"
UUID = "uuid:0c2ba0ab-4a9b-4a37-8e4b-c0a2e2f0f1aa"
INSTANCE = (
    b'<data id="f1" xmlns:orx="http://openrosa.org/xforms"><photo type="file">a.jpg</photo>'
    b'<sound type="file">b.jpg</sound><note>hi</note><orx:meta><orx:instanceID>'
    + UUID.encode()
    + b"</orx:instanceID>"
    b"</orx:meta></data>"
)
COLLECT_DATE = re.compile(
    r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} (0[1-9]|1[0-2]):\d\d:\d\d GMT$"
)
RFC1123 = re.compile(r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} ([01]\d|2[0-3]):\d\d:\d\d GMT$")


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def digest_params(header: str) -> dict[str, str]:
    return {k: q or t for k, q, t in re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]+))', header[7:])}


class FakeOpenRosa:
    def __init__(self) -> None:
        self.base = ""
        self.seen: list[dict[str, Any]] = []
        self.nonces: dict[str, int] = {}  # nonce -> highest nc accepted
        self.stale: set[str] = set()
        self.accept_length = "1000"

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        uri = environ["REQUEST_URI"]
        entry: dict[str, Any] = {"method": request.method, "path": request.path, "uri": uri}
        entry |= {"args": request.args.to_dict(), "headers": dict(request.headers)}
        entry["auth"] = self.verify(request, uri)
        self.seen.append(entry)
        try:
            response = (
                self.route(request, entry) if entry["auth"] == "ok" else self.challenge(entry)
            )
        finally:
            request.close()  # closes uploaded part files
        response.headers["X-OpenRosa-Version"] = "1.0"
        return response(environ, start_response)

    def challenge(self, entry: dict[str, Any]) -> Response:
        nonce = secrets.token_hex(8)
        self.nonces[nonce] = 0
        stale = ", stale=true" if entry["auth"] == "stale" else ""
        value = (
            f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", opaque="{OPAQUE}", algorithm=MD5'
        )
        return Response(status=401, headers={"WWW-Authenticate": value + stale})

    def verify(self, request: Request, uri: str) -> str:
        header = request.headers.get("Authorization")
        if header is None:
            return "missing"
        if not header.startswith("Digest "):
            return "bad"
        p = digest_params(header)
        ha1 = md5(f"{USER}:{REALM}:{PASSWORD}".encode())
        ha2 = md5(f"{request.method}:{uri}".encode())
        expected = md5(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:{ha2}".encode())
        if (p["username"], p["uri"]) != (USER, uri):
            return "bad"
        if p["response"] != expected or p["qop"] != "auth" or p.get("opaque") != OPAQUE:
            return "bad"
        if p["nonce"] in self.stale:
            return "stale"
        if p["nonce"] not in self.nonces or int(p["nc"], 16) <= self.nonces[p["nonce"]]:
            return "bad"  # unknown nonce or replayed nc
        self.nonces[p["nonce"]] = int(p["nc"], 16)
        return "ok"

    def route(self, request: Request, entry: dict[str, Any]) -> Response:
        path, url = request.path.removeprefix(PREFIX), self.base + PREFIX
        xml = "text/xml; charset=utf-8"
        if path == "/formList":
            body = (
                '<xforms xmlns="http://openrosa.org/xforms/xformsList"><xform><formID>f1</formID>'
                f"<name>F1</name><version>1</version><hash>md5:{md5(FORM)}</hash>"
                f"<downloadUrl>{url}/forms/f1.xml</downloadUrl>"
                f"<manifestUrl>{url}/forms/f1/manifest</manifestUrl></xform></xforms>"
            )
            return Response(body, content_type=xml)
        if path == "/forms/f1.xml":
            return Response(FORM, content_type=xml)
        if path == "/forms/f1/manifest":
            body = (
                '<manifest xmlns="http://openrosa.org/xforms/xformsManifest"><mediaFile>'
                f"<filename>people.csv</filename><hash>md5:{md5(MEDIA)}</hash>"
                f"<downloadUrl>{url}/media/people.csv</downloadUrl></mediaFile></manifest>"
            )
            return Response(body, content_type=xml)
        if path == "/media/people.csv":
            return Response(MEDIA, content_type="text/csv")
        if path == "/submission" and request.method == "HEAD":
            return Response(
                status=204, headers={"X-OpenRosa-Accept-Content-Length": self.accept_length}
            )
        if path == "/submission" and request.method == "POST":
            entry["fields"] = request.form.to_dict()
            entry["files"] = [
                (n, f.filename, f.mimetype) for n, f in request.files.items(multi=True)
            ]
            body = '<OpenRosaResponse xmlns="http://openrosa.org/http/response"><message nature="submit_success">thanks</message></OpenRosaResponse>'
            return Response(body, status=201, content_type=xml)
        return Response(status=404)


@pytest.fixture
def fake() -> Iterator[FakeOpenRosa]:
    app = FakeOpenRosa()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def authorizations(fake: FakeOpenRosa) -> list[dict[str, str]]:
    return [digest_params(e["headers"]["Authorization"]) for e in fake.seen if e["auth"] == "ok"]


def test_collect_download_sends_device_id_and_digest_only_after_401(fake: FakeOpenRosa) -> None:
    with CollectClient(fake.base + PREFIX, USER, PASSWORD) as collect:
        _, forms = collect.form_list()
        assert forms[0]["formID"] == "f1" and forms[0]["hash"] == md5(FORM)
        assert collect.download_form(forms[0]) == FORM
        media = collect.manifest(forms[0])
        assert media[0]["filename"] == "people.csv"
        assert collect.download_media(media[0]) == MEDIA
        assert collect.download_media(media[0]) is None  # md5 unchanged: not requested again
    assert [e["auth"] for e in fake.seen] == ["missing", "ok", "ok", "ok", "ok"]
    assert "Authorization" not in fake.seen[0]["headers"]
    for e in fake.seen:
        assert e["args"]["deviceID"] == "collect:abc123"
        assert "deviceID=collect%3Aabc123" in e["uri"]
        assert e["headers"]["X-Openrosa-Version"] == "1.0"
        assert e["headers"]["Accept-Encoding"] == "gzip"
        assert COLLECT_DATE.match(e["headers"]["Date"])
        assert e["headers"]["User-Agent"].startswith("org.odk.collect.android/")
    auths = authorizations(fake)  # proactive: one nonce, one cnonce, nc counting up
    assert [a["nc"] for a in auths] == ["00000001", "00000002", "00000003", "00000004"]
    assert len({a["nonce"] for a in auths}) == 1 and len({a["cnonce"] for a in auths}) == 1


def test_collect_answers_stale_once_and_drops_a_rejected_cache(fake: FakeOpenRosa) -> None:
    with CollectClient(fake.base + PREFIX, USER, PASSWORD) as collect:
        collect.form_list()
        fake.stale.add(authorizations(fake)[-1]["nonce"])
        collect.form_list()
        assert [e["auth"] for e in fake.seen[2:]] == ["stale", "ok"]
        assert authorizations(fake)[-1]["nc"] == "00000001"
        fake.nonces.clear()  # server forgot the nonce: 401 without stale
        collect.form_list()
        assert [e["auth"] for e in fake.seen[4:]] == ["bad", "missing", "ok"]


def test_collect_without_credentials_stops_at_the_401(fake: FakeOpenRosa) -> None:
    with CollectClient(fake.base + PREFIX) as collect, pytest.raises(OpenRosaClientError) as err:
        collect.form_list()
    assert err.value.kind == "AuthRequired" and len(fake.seen) == 1


def test_collect_submission_heads_then_splits_with_is_incomplete(fake: FakeOpenRosa) -> None:
    files = {"c.jpg": b"c" * 100, "a.jpg": b"a" * 600, "b.jpg": b"b" * 600}
    with CollectClient(fake.base + PREFIX, USER, PASSWORD) as collect:
        responses = collect.submit(INSTANCE, files)
        assert [r.status_code for r in responses] == [201, 201]
        assert collect.last_ok and collect.last_message == "thanks"
    methods = [e["method"] for e in fake.seen if e["auth"] == "ok"]
    assert methods == ["HEAD", "POST", "POST"]
    posts = [e for e in fake.seen if e["method"] == "POST" and e["auth"] == "ok"]
    assert [p["fields"] for p in posts] == [{"*isIncomplete*": "yes"}, {}]
    first, last = ([(n, fn) for n, fn, _ in p["files"]] for p in posts)
    assert first[1:] == [("a.jpg", "a.jpg")] and last[1:] == [
        ("b.jpg", "b.jpg"),
        ("c.jpg", "c.jpg"),
    ]
    name, filename, mimetype = posts[0]["files"][0]
    assert name == "xml_submission_file" and mimetype == "text/xml"
    assert re.fullmatch(r"f1_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d\.xml", filename)
    assert posts[0]["files"][1][2] == "image/jpeg"
    assert all(e["args"]["deviceID"] == "collect:abc123" for e in fake.seen)


def test_enketo_heads_form_list_and_batches_without_is_incomplete(fake: FakeOpenRosa) -> None:
    with EnketoClient(fake.base + PREFIX, USER, PASSWORD) as enketo:
        enketo.check_form("f1")
        _, info = enketo.form_info("f1")
        assert enketo.download_form(info) == FORM
        assert enketo.manifest(info)[0]["filename"] == "people.csv"
        responses = enketo.submit(INSTANCE, {"a.jpg": b"a" * 600, "b.jpg": b"b" * 600})
        assert [r.status_code for r in responses] == [201, 201] and enketo.last_message == "thanks"
    first = fake.seen[0]
    assert (first["method"], first["path"], first["args"], first["auth"]) == (
        "HEAD",
        PREFIX + "/formList",
        {"formID": "f1"},
        "missing",
    )
    assert all("deviceID" not in e["args"] for e in fake.seen)
    assert all(a["nc"] == "00000001" for a in authorizations(fake))  # no proactive reuse
    assert all(RFC1123.match(e["headers"]["Date"]) for e in fake.seen)
    posts = [e for e in fake.seen if e["method"] == "POST"]
    assert [e["auth"] for e in posts] == ["ok", "ok"]  # Authorization computed from a bare HEAD
    before = [fake.seen[fake.seen.index(p) - 1] for p in posts]
    assert all(
        (b["method"], b["auth"], b["path"]) == ("HEAD", "missing", PREFIX + "/submission")
        for b in before
    )
    assert [p["fields"] for p in posts] == [{"__csrf": "x7Rk2bQv-enketo-csrf"}] * 2
    assert [p["files"][0][:2] for p in posts] == [
        ("xml_submission_file", "xml_submission_file")
    ] * 2
    assert [[n for n, _, _ in p["files"][1:]] for p in posts] == [["a.jpg"], ["b.jpg"]]
    assert all(p["headers"]["X-Openrosa-Instance-Id"] == UUID for p in posts)


def test_splitting_rules_match_upstream() -> None:
    assert collect_chunks(10, [1] * 102, 10_000) == [(0, 101, True), (101, 102, False)]
    assert collect_chunks(10, [], 5) == [(0, 0, False)]
    assert collect_chunks(100, [500, 500, 1], 1000) == [(0, 1, True), (1, 3, False)]
    assert enketo_batches([3, 8, 3, 1], 10) == [[0, 2, 3], [1]]
    assert enketo_batches([10, 1], 10) == [[0], [1]]
    assert (
        collect_date(datetime(2024, 1, 15, 13, 5, 9, tzinfo=UTC)) == "Mon, 15 Jan 2024 01:05:09 GMT"
    )
