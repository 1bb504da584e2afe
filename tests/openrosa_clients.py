"""Test clients that speak OpenRosa on the wire as ODK Collect and Enketo Express do.

Written from the clients' source (file paths in each class docstring), for tests against a live
server URL. Every HTTP exchange, including each 401 and each redirect hop, lands in `requests_log`
as (method, url, request headers, status). Errors the real client would show raise
`OpenRosaClientError` whose `kind` names the upstream exception.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
import secrets
import uuid
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import requests
from defusedxml import ElementTree, minidom
from urllib3.util import SKIP_HEADER

LogEntry = tuple[str, str, dict[str, str], int]
Part = tuple[str, str | None, str | None, bytes]  # name, filename, content type, data
LIST_NS, MANIFEST_NS = (
    "http://openrosa.org/xforms/xformsList",
    "http://openrosa.org/xforms/xformsManifest",
)
_PARAM = re.compile(r'([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
_DAYS, _MONTHS = (
    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
)
# CollectThenSystemContentTypeMapper: Collect's own table, then android.webkit.MimeTypeMap.
# fmt: off
_COLLECT_TYPES = {"amr": "audio/amr", "oga": "audio/ogg", "ogv": "video/ogg", "webm": "video/webm"}
_ANDROID_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "mp3": "audio/mpeg",
                  "m4a": "audio/mpeg", "3gp": "video/3gpp", "mp4": "video/mp4", "wav": "audio/x-wav",
                  "csv": "text/comma-separated-values"}
# fmt: on


class OpenRosaClientError(Exception):
    def __init__(self, kind: str, detail: str = "", status: int | None = None) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind, self.status = kind, status


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def collect_date(now: datetime | None = None) -> str:
    """SimpleDateFormat("E, dd MMM yyyy hh:mm:ss zz", Locale.US) in GMT: 12-hour clock, no AM/PM."""
    t = now or datetime.now(UTC)
    return f"{_DAYS[t.weekday()]}, {t:%d} {_MONTHS[t.month - 1]} {t:%Y} {t:%I:%M:%S} GMT"


def collect_chunks(xml_len: int, sizes: list[int], limit: int) -> list[tuple[int, int, bool]]:
    """SubmissionChunker.chunk(): (start, end, isIncomplete); the XML counts against every chunk."""
    chunks, i, first = [], 0, True
    while i < len(sizes) or first:
        start, first, total, incomplete = i, False, xml_len, False
        while i < len(sizes):
            total += sizes[i]
            if i + 1 < len(sizes) and (i - start + 1 > 100 or total + sizes[i + 1] > limit):
                incomplete, i = True, i + 1
                break
            i += 1
        chunks.append((start, i, incomplete))
    return chunks


def enketo_batches(sizes: list[int], limit: int) -> list[list[int]]:
    """connection.js _divideIntoBatches, ported literally (first fit, strict <, XML not counted)."""
    rest: list[tuple[int, int]] = list(enumerate(sizes))
    batches: list[list[int]] = []
    while rest:
        batch, total = [rest[0][0]], rest[0][1]
        if rest[0][1] < limit:
            for index, size in rest[1:]:
                if total + size < limit:
                    batch.append(index)
                    total += size
        batches.append(batch)
        i = 0
        while i < len(rest):  # the JS splice-while-iterating loop, including its index skipping
            for member in batch:
                if i < len(rest) and rest[i][0] == member:
                    rest.pop(i)
            i += 1
    return batches or [[]]


def multipart(parts: list[Part], boundary: str, part_lengths: bool) -> bytes:
    """OkHttp MultipartBody (Content-Length per part) or a browser FormData body (none)."""
    out: list[bytes] = []
    for name, filename, ctype, data in parts:
        disp = f'form-data; name="{_q(name)}"' + (
            f'; filename="{_q(filename)}"' if filename else ""
        )
        head = f"--{boundary}\r\nContent-Disposition: {disp}\r\n"
        head += (f"Content-Type: {ctype}\r\n" if ctype else "") + (
            f"Content-Length: {len(data)}\r\n" if part_lengths else ""
        )
        out += [head.encode(), b"\r\n", data, b"\r\n"]
    return b"".join([*out, f"--{boundary}--\r\n".encode()])


def _q(value: str) -> str:
    return value.replace("\n", "%0A").replace("\r", "%0D").replace('"', "%22")


def _split(tag: str) -> tuple[str, str]:
    return (
        (tag[1:].partition("}")[0].lower(), tag.partition("}")[2]) if tag[0] == "{" else ("", tag)
    )


def _fields(el: Any, ns: str) -> dict[str, str]:
    return {_split(c.tag)[1]: "".join(c.itertext()).strip() for c in el if _split(c.tag)[0] == ns}


def _dom_text(node: Any) -> str:
    return (
        node.data if node.nodeType == node.TEXT_NODE else "".join(map(_dom_text, node.childNodes))
    )


class _WireClient:
    def __init__(self, server_url: str, username: str | None, password: str | None) -> None:
        self.server_url, self.username, self.password = server_url, username, password
        self.session = requests.Session()
        self.session.headers.clear()  # only the headers the real client sends
        self.requests_log: list[LogEntry] = []
        self.last_message: str | None = None
        self.last_error: str | None = None
        self.last_ok = False

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> _WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _raw(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None = None,
        redirects: bool = True,
    ) -> requests.Response:
        resp = self.session.request(
            method, url, headers=headers, data=body, allow_redirects=redirects, timeout=(30, 60)
        )
        for r in [*resp.history, resp]:
            sent = {k: v for k, v in r.request.headers.items() if v != SKIP_HEADER}
            self.requests_log.append(
                (str(r.request.method), str(r.request.url), sent, r.status_code)
            )
        return resp


class CollectClient(_WireClient):
    """ODK Collect (getodk/collect, current master) and its okhttp-digest library.

    - open-rosa/.../http/okhttp/OkHttpOpenRosaServerClientProvider.java: headers User-Agent,
      X-OpenRosa-Version: 1.0, Date via collect_date() (12-hour `hh`); redirects followed; digest
      always, basic only for https (DispatchingAuthenticator + CachingAuthenticatorDecorator +
      AuthenticationCacheInterceptor). OkHttp's BridgeInterceptor adds Accept-Encoding: gzip.
    - rburgst/okhttp-digest DigestAuthenticator.java + AuthenticationCacheInterceptor.java: nothing
      until a 401; then per scheme:host:port credentials go proactively, same nonce, nc+1, same
      cnonce; a 401 with stale=true is answered once with the new nonce; any other 401 after a
      proactive Digest drops the cache and resends bare (new challenge, nc=1).
    - open-rosa/.../forms/OpenRosaXmlFetcher.java + entities/.../parse/StringExt.kt: every URL
      (formList, downloadUrl, manifestUrl, media, submission) gets appendQueryParameter("deviceID").
    - OkHttpConnection.executeGetRequest: non-200 is an error; a Content-Type lacking "text/xml"
      for formList/manifest is rejected; OpenRosaClient.kt: formList = server + "/formList" with no
      query (401 AuthRequired, 404 Unreachable, other ServerError, no X-OpenRosa-Version header
      ServerNotOpenRosa); parse/OpenRosaResponseParserImpl.kt parses list and manifest.
    - formmanagement/download/ServerFormDownloader.kt: no md5: hash -> FormWithNoHash. Collect does
      not compare the download with the hash; with verify_hash a mismatch raises, because Collect
      would then offer the form as "updated" forever (ServerFormsDetailsFetcher.kt).
    - ServerFormUseCases.kt: a media file is fetched only when the local copy's md5 differs, an
      entity list only when the manifest hash differs from the stored list hash.
    - instancemanagement/send/OpenRosaServerInstanceUploader.kt: HEAD server/submission; 204 reads
      X-OpenRosa-Accept-Content-Length (10,000,000 if absent), 401 AuthRequired, any other 2xx is
      "not an OpenRosa submission endpoint", anything else still POSTs. OkHttpConnection +
      http/SubmissionChunker.kt: multipart xml_submission_file (instance file name, text/xml), one
      part per file named by its file name, split per collect_chunks(), `*isIncomplete*`=yes on all
      but the last POST, stop at the first status that is not 201/202; 204 on POST is an error.
      ResponseMessageParser: first <message> of an OpenRosaResponse becomes last_message.
    """

    USER_AGENT = "org.odk.collect.android/v2025.1.3 Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7 Build/UQ1A.240205.004)"

    def __init__(
        self,
        server_url: str,
        username: str | None = None,
        password: str | None = None,
        device_id: str = "collect:abc123",
    ) -> None:
        super().__init__(server_url, username, password)
        self.device_id = device_id
        self.auth_cache: set[str] = set()  # AuthenticationCacheInterceptor keys
        self.challenge: dict[str, str] | None = None  # DigestAuthenticator.parametersRef
        self.last_nonce: str | None = None
        self.nc, self.cnonce = 0, ""
        self.media_cache: dict[str, bytes] = {}  # filename -> bytes Collect already holds
        self.entity_list_hashes: dict[str, str] = {}  # entity list name -> manifest hash

    def with_device_id(self, url: str) -> str:
        """Android Uri.buildUpon().appendQueryParameter("deviceID", id): Uri.encode escapes ':'."""
        p = urlsplit(url)
        param = "deviceID=" + quote(self.device_id, safe="!'()*")
        return urlunsplit(p._replace(query=f"{p.query}&{param}" if p.query else param))

    def form_list(
        self, form_id: str | None = None, verbose: bool = False, list_all_versions: bool = False
    ) -> tuple[requests.Response, list[dict[str, Any]]]:
        """GET server/formList. Collect itself never sends formID/verbose/listAllVersions."""
        url = self.server_url.rstrip("/") + "/formList"
        extra = {
            "formID": form_id,
            "verbose": "true" if verbose else None,
            "listAllVersions": "true" if list_all_versions else None,
        }
        if query := urlencode({k: v for k, v in extra.items() if v is not None}):
            url += "?" + query
        resp, root = self._get_xml(url)
        if root is None:
            kind = {401: "AuthRequired", 404: "Unreachable"}.get(resp.status_code, "ServerError")
            raise OpenRosaClientError(kind, url, resp.status_code)
        if "X-OpenRosa-Version" not in resp.headers:
            raise OpenRosaClientError("ServerNotOpenRosa", url)
        forms: list[dict[str, Any]] = []
        if _split(root.tag) != (LIST_NS.lower(), "xforms"):
            raise OpenRosaClientError("ParseError", "root is not xformsList <xforms>")
        for el in root:
            if _split(el.tag)[0] != LIST_NS.lower() or _split(el.tag)[1].lower() != "xform":
                continue
            f = {k: v or None for k, v in _fields(el, LIST_NS.lower()).items()}
            if not (f.get("formID") and f.get("name") and f.get("downloadUrl")):
                raise OpenRosaClientError(
                    "ParseError", f"<xform> without formID/name/downloadUrl: {f}"
                )
            h = f.get("hash")
            f["hash"] = h[4:] if h and h.startswith("md5:") else None
            forms.append(f)
        return resp, forms

    def download_form(self, entry: dict[str, Any], verify_hash: bool = True) -> bytes:
        if not entry.get("hash"):
            raise OpenRosaClientError("FormWithNoHash", entry["formID"])
        body = self._fetch_bytes(entry["downloadUrl"])
        if verify_hash and md5_hex(body) != entry["hash"]:
            raise OpenRosaClientError(
                "HashMismatch", f"{md5_hex(body)} != list hash {entry['hash']}"
            )
        return body

    def manifest(self, entry: dict[str, Any]) -> list[dict[str, Any]]:
        if not entry.get("manifestUrl"):
            return []
        resp, root = self._get_xml(entry["manifestUrl"])
        if root is None:
            raise OpenRosaClientError("ServerError", entry["manifestUrl"], resp.status_code)
        if "X-OpenRosa-Version" not in resp.headers or _split(root.tag) != (
            MANIFEST_NS.lower(),
            "manifest",
        ):
            raise OpenRosaClientError("ParseError", "not an OpenRosa <manifest>")
        files = []
        for el in root:
            if _split(el.tag)[0] != MANIFEST_NS.lower() or _split(el.tag)[1].lower() != "mediafile":
                continue
            f = _fields(el, MANIFEST_NS.lower())
            name, digest, url = f.get("filename"), f.get("hash"), f.get("downloadUrl")
            if not (name and digest and url):  # parseManifest returns null: whole manifest rejected
                raise OpenRosaClientError("ParseError", f"<mediaFile> incomplete: {f}")
            files.append(
                {
                    "filename": name.rsplit("/", 1)[-1],
                    "hash": digest[4:],
                    "downloadUrl": url,
                    "isEntityList": el.get("type") == "entityList",
                    "integrityUrl": f.get("integrityUrl"),
                }
            )
        return files

    def download_media(self, media_file: dict[str, Any]) -> bytes | None:
        """The file's bytes, or None when Collect would not request it (unchanged)."""
        name = media_file["filename"]
        if media_file["isEntityList"]:
            if self.entity_list_hashes.get(name.removesuffix(".csv")) == media_file["hash"]:
                return None
        elif name in self.media_cache and md5_hex(self.media_cache[name]) == media_file["hash"]:
            return None
        body = self._fetch_bytes(media_file["downloadUrl"])
        self.media_cache[name] = body
        if media_file["isEntityList"]:
            self.entity_list_hashes[name.removesuffix(".csv")] = media_file["hash"]
        return body

    def submit(
        self,
        xml: bytes,
        attachments: dict[str, bytes] | None = None,
        max_post_bytes: int = 10_000_000,
        instance_name: str | None = None,
    ) -> list[requests.Response]:
        self.last_message = self.last_error = None
        self.last_ok = False
        base = self.server_url[:-1] if self.server_url.endswith("/") else self.server_url
        url = self.with_device_id(base + "/submission")
        head = self._send("HEAD", url)
        limit = max_post_bytes
        if head.status_code == 204:
            value = head.headers.get("X-OpenRosa-Accept-Content-Length")
            limit = int(value) if value and re.fullmatch(r"[+-]?\d+", value) else limit
        elif head.status_code == 401:
            raise OpenRosaClientError("AuthRequired", url, 401)
        elif 200 <= head.status_code < 300:
            raise OpenRosaClientError(
                "NotOpenRosaEndpoint", f"HEAD status {head.status_code}", head.status_code
            )
        name = instance_name or self._instance_name(xml)
        files = sorted((attachments or {}).items())
        responses: list[requests.Response] = []
        for start, end, incomplete in collect_chunks(len(xml), [len(d) for _, d in files], limit):
            parts: list[Part] = [("xml_submission_file", name, "text/xml", xml)]
            parts += [(fn, fn, self.content_type(fn), data) for fn, data in files[start:end]]
            if incomplete:
                parts.append(("*isIncomplete*", None, None, b"yes"))
            boundary = str(uuid.uuid4())
            resp = self._send(
                "POST",
                url,
                multipart(parts, boundary, True),
                f"multipart/form-data; boundary={boundary}",
            )
            responses.append(resp)
            if resp.status_code == 204:
                raise OpenRosaClientError("FormUploadException", "204 answer to a POST", 204)
            if resp.status_code not in (201, 202):
                break
        self._interpret(responses[-1], url)
        return responses

    @staticmethod
    def content_type(filename: str) -> str:
        ext = filename.rsplit(".", 1)[1].lower() if "." in filename else ""
        guessed = mimetypes.types_map.get("." + ext) if ext else None
        return (
            _COLLECT_TYPES.get(ext)
            or _ANDROID_TYPES.get(ext)
            or guessed
            or "application/octet-stream"
        )

    @staticmethod
    def _instance_name(xml: bytes) -> str:
        """Collect uploads `<form name>_<yyyy-MM-dd_HH-mm-ss>.xml`, or submission.xml if encrypted."""
        if re.search(rb'encrypted="yes"', xml[:2000]):
            return "submission.xml"
        form = re.search(rb'\sid="([^"]+)"', xml)
        stem = form.group(1).decode() if form else "instance"
        return f"{stem}_{datetime.now(UTC):%Y-%m-%d_%H-%M-%S}.xml"

    def _interpret(self, resp: requests.Response, url: str) -> None:
        code, message = resp.status_code, None
        if "OpenRosaResponse" in resp.text:
            try:
                found = minidom.parseString(resp.content).getElementsByTagName("message")
                message = _dom_text(found[0]) if found else None
            except Exception:  # ResponseMessageParser: a SAXException leaves it invalid
                message = None
        self.last_message, self.last_ok = message, code in (201, 202)
        if not self.last_ok:
            reason = f"Error: {resp.reason} ({code}) at {url}"
            self.last_error = (
                {200: "Error: Network login failure? Again?", 401: reason}.get(code)
                or (f"Error: {message}" if message is not None else None)
                or (
                    "Failed to upload. Please make sure the form is configured to accept submissions on the server"
                    if code == 400
                    else reason
                )
            )

    def _fetch_bytes(self, url: str) -> bytes:
        resp = self._send("GET", self.with_device_id(url))
        if resp.status_code != 200:
            raise OpenRosaClientError("ServerError", url, resp.status_code)
        return resp.content

    def _get_xml(self, url: str) -> tuple[requests.Response, Any]:
        resp = self._send("GET", self.with_device_id(url))
        if resp.status_code != 200:
            return resp, None
        ctype = resp.headers.get("Content-Type")
        if ctype is not None and "text/xml" not in ctype.lower():
            raise OpenRosaClientError(
                "FetchError", f"ContentType: {ctype} returned from: {url} is not text/xml"
            )
        try:
            return resp, ElementTree.fromstring(resp.content)
        except ElementTree.ParseError as e:
            raise OpenRosaClientError("FetchError", f"unparseable XML: {e}") from e

    # --- OkHttp + okhttp-digest -------------------------------------------------------------
    def _send(
        self, method: str, url: str, body: bytes | None = None, content_type: str | None = None
    ) -> requests.Response:
        p = urlsplit(url)
        key = f"{p.scheme}:{p.hostname}:{p.port or (443 if p.scheme == 'https' else 80)}"
        headers = {
            "User-Agent": self.USER_AGENT,
            "X-OpenRosa-Version": "1.0",
            "Date": collect_date(),
            "Accept-Encoding": "gzip",
            "Connection": "Keep-Alive",
        }
        if content_type:
            headers["Content-Type"] = content_type
        cached = key in self.auth_cache
        proactive = self._with_state(method, url) if cached else None
        resp = self._follow_ups(method, url, headers, body, proactive, key)
        if cached and resp.status_code == 401 and key in self.auth_cache:
            self.auth_cache.discard(key)  # "Cached authentication expired": resend without it
            resp = self._follow_ups(method, url, headers, body, None, key)
        return resp

    def _follow_ups(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        authorization: str | None,
        key: str,
    ) -> requests.Response:
        for _ in range(21):  # OkHttp MAX_FOLLOW_UPS = 20
            sent = {**headers, "Authorization": authorization} if authorization else headers
            resp = self._raw(method, url, sent, body)
            if resp.status_code != 401 or self.username is None:
                return resp
            method, url = str(resp.request.method), str(resp.url)
            authorization = self._authenticate(resp, method, url, authorization)
            if authorization is None:
                return resp
            self.auth_cache.add(key)
        raise OpenRosaClientError("FetchError", "Too many follow-up requests: 21")

    def _authenticate(
        self, resp: requests.Response, method: str, url: str, previous: str | None
    ) -> str | None:
        values = resp.raw.headers.getlist("WWW-Authenticate")
        for scheme in (
            m.group(1).lower()
            for v in values
            for m in re.finditer(
                r"(?:^|,)\s*([A-Za-z][\w!#$%&'*+.^`|~-]*)(?=\s+[^\s=,]+=|\s*(?:,|$))", v
            )
        ):
            if scheme == "digest":
                header = next(v for v in values if v.startswith("Digest"))
                self.challenge = {
                    k: re.sub(r"\\(.)", r"\1", q) if q else t
                    for k, q, t in _PARAM.findall(header[7:])
                }
                if "nonce" not in self.challenge:
                    raise OpenRosaClientError(
                        "FetchError", f"missing nonce in challenge header: {header}"
                    )
                stale = self.challenge.get("stale", "").lower() == "true"
                if previous and previous.startswith("Digest") and not stale:
                    return None  # "previous digest authentication with same nonce failed"
                return self._digest(method, url)
            if scheme == "basic" and urlsplit(url).scheme.lower() == "https":
                return None if previous and previous.startswith("Basic") else self._basic()
        raise OpenRosaClientError("FetchError", f"unsupported auth scheme {values}")

    def _with_state(self, method: str, url: str) -> str | None:
        if self.challenge and "realm" in self.challenge:  # "digest" iterates before "basic"
            return self._digest(method, url)
        return self._basic() if urlsplit(url).scheme.lower() == "https" else None

    def _basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode("latin-1", "replace")
        return "Basic " + base64.b64encode(raw).decode()

    def _digest(self, method: str, url: str) -> str | None:
        c = dict(self.challenge or {})
        if "realm" not in c:
            return None
        p = urlsplit(url)
        uri = (p.path or "/") + (f"?{p.query}" if p.query else "")
        realm, nonce, algorithm = c["realm"], c["nonce"], c.get("algorithm") or "MD5"
        qop = None
        if "qop" in c:
            if "auth" not in {q.strip().lower() for q in c["qop"].split(",")}:
                raise OpenRosaClientError(
                    "FetchError", f"None of the qop methods is supported: {c['qop']}"
                )
            qop = "auth"
        charset = c.get("charset") or "ascii"
        name = algorithm.upper().replace("-SESS", "").replace("-", "")
        if name not in ("MD5", "SHA256", "SHA512"):
            raise OpenRosaClientError("FetchError", f"Unsupported digest algorithm: {algorithm}")

        def h(s: str, enc: str = charset) -> str:
            return hashlib.new(name.lower(), s.encode(enc, "replace")).hexdigest()

        if nonce == self.last_nonce:
            self.nc += 1
        else:
            self.nc, self.cnonce, self.last_nonce = 1, secrets.token_hex(8), nonce
        nc = f"{self.nc:08x}"
        a1 = f"{self.username}:{realm}:{self.password}"
        if algorithm.lower().endswith("-sess"):
            a1 = f"{h(a1)}:{nonce}:{self.cnonce}"
        ha1, ha2 = h(a1), h(f"{method}:{uri}")
        tail = f"{nc}:{self.cnonce}:auth:{ha2}" if qop else ha2
        pairs = [
            ("username", self.username),
            ("realm", realm),
            ("nonce", nonce),
            ("uri", uri),
            ("response", h(f"{ha1}:{nonce}:{tail}", "ascii")),
        ]
        pairs += [("qop", qop), ("nc", nc), ("cnonce", self.cnonce)] if qop else []
        pairs += [("algorithm", algorithm)] + ([("opaque", c["opaque"])] if "opaque" in c else [])
        quoted = [
            f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
            if k not in ("nc", "qop", "algorithm")
            else f"{k}={v}"
            for k, v in pairs
        ]
        return "Digest " + ", ".join(quoted)


class EnketoClient(_WireClient):
    """Enketo Express: its Node server talks OpenRosa (enketo/enketo, packages/enketo-express).

    - app/lib/communicator.js getUpdatedRequestHeaders: Date = JS toUTCString() (24-hour RFC 1123),
      User-Agent "Enketo/<version> <browser UA>", X-OpenRosa-Version: 1.0; no deviceID, no
      Accept-Encoding. _request: auth with sendImmediately=false, so the first request is bare;
      any 2xx passes (also for HEAD), 401 -> "Forbidden. Authorization Required.", else failure.
    - request/request lib/auth.js (also @cypress/request): on a 401 the first WWW-Authenticate
      scheme it knows wins: Basic (over http too) or Digest with nc=00000001, a fresh cnonce, no
      proactive reuse, no stale handling; one retry only.
    - communicator.js: getFormListUrl -> formList?formID=X; authenticate() -> HEAD of that URL;
      getXFormInfo -> GET of it, xml2js finds <xforms><xform> by unprefixed names; getXForm ->
      GET downloadUrl (no hash check); getManifest -> GET manifestUrl; getMaxSize -> HEAD
      server/submission, X-OpenRosa-Accept-Content-Length (browser default 5,000,000:
      public/js/src/module/settings.js).
    - app/controllers/submission-controller.js: per batch getAuthHeader() = HEAD server/submission
      with only X-OpenRosa-Version + Date; on 401 it computes the Authorization for "POST"; then
      the browser body is piped as a POST with that header plus the browser's X-OpenRosa-Instance-Id
      and X-OpenRosa-Deprecated-Id (public/js/src/module/connection.js _uploadBatch).
    - connection.js _prepareFormDataArray: XML serialised without declaration, type="file"
      attributes removed; part xml_submission_file with filename "xml_submission_file"
      (text/xml), the CSRF cookie field, then each referenced file as name=filename=file name;
      batches per enketo_batches(), no *isIncomplete*; sequential, stop at the first status that
      is not 201/202; the first batch's message is the result.
    """

    def __init__(
        self,
        server_url: str,
        username: str | None = None,
        password: str | None = None,
        version: str = "7.5.1",
        browser_ua: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        csrf: tuple[str, str] | None = ("__csrf", "x7Rk2bQv-enketo-csrf"),
    ) -> None:
        super().__init__(server_url, username, password)
        self.user_agent = f"Enketo/{version} {browser_ua}"
        self.csrf = csrf
        self.failed_files: list[str] = []

    def form_list_url(self, form_id: str | None) -> str:
        base = self.server_url if self.server_url.endswith("/") else self.server_url + "/"
        return (
            base
            + "formList"
            + (f"?{urlencode({'formID': form_id})}" if form_id is not None else "")
        )

    def submission_url(self) -> str:
        return self.server_url + ("submission" if self.server_url.endswith("/") else "/submission")

    def check_form(self, form_id: str) -> requests.Response:
        return self._request("HEAD", self.form_list_url(form_id))

    def form_info(self, form_id: str) -> tuple[requests.Response, dict[str, str]]:
        resp = self._request("GET", self.form_list_url(form_id))
        root = minidom.parseString(resp.content).documentElement
        for xform in self._children(root, "xform") if root.nodeName == "xforms" else []:
            info = {c.nodeName: _dom_text(c) for c in reversed(self._children(xform))}
            if info.get("formID") == form_id:
                return resp, info
        raise OpenRosaClientError("NotFoundInFormList", form_id, 404)

    def download_form(self, info: dict[str, str]) -> bytes:
        return self._request("GET", info["downloadUrl"]).content

    def manifest(self, info: dict[str, str]) -> list[dict[str, Any]]:
        if not info.get("manifestUrl"):
            return []
        root = minidom.parseString(
            self._request("GET", info["manifestUrl"]).content
        ).documentElement
        media = self._children(root, "mediaFile") if root.nodeName == "manifest" else []
        return [
            {
                **{c.nodeName: _dom_text(c) for c in reversed(self._children(m))},
                "$": dict(m.attributes.items()),
            }
            for m in media
        ]

    def max_size(self) -> str | None:
        return self._request("HEAD", self.submission_url()).headers.get(
            "X-OpenRosa-Accept-Content-Length"
        )

    def submit(
        self, xml: bytes, attachments: dict[str, bytes] | None = None, max_size: int | None = None
    ) -> list[requests.Response]:
        self.last_message = self.last_error = None
        self.last_ok = False
        if max_size is None:  # getMaximumSubmissionSize at form load
            value = self.max_size()
            max_size = (
                int(float(value))
                if value and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value)
                else 5_000_000
            )
        doc = minidom.parseString(xml)
        elements = [e for e in doc.getElementsByTagName("*") if e.getAttribute("type") == "file"]
        available = attachments or {}
        if not elements:  # XML not from Enketo's model: the binary nodes are those naming a file
            elements = [e for e in doc.getElementsByTagName("*") if _dom_text(e) in available]
        files: list[tuple[str, bytes]] = []
        self.failed_files = []
        for el in elements:
            if el.hasAttribute("type"):
                el.removeAttribute("type")
            if (name := _dom_text(el)) in available:
                files.append((name, available[name]))
            else:
                self.failed_files.append(name)
        body_xml = doc.documentElement.toxml().encode()
        meta = {
            tag: re.search(rf"<(?:\w+:)?{tag}>([^<]*)<".encode(), xml)
            for tag in ("instanceID", "deprecatedID")
        }
        headers = {
            "X-OpenRosa-Instance-Id": meta["instanceID"].group(1).decode()
            if meta["instanceID"]
            else "",
            "X-OpenRosa-Deprecated-Id": meta["deprecatedID"].group(1).decode()
            if meta["deprecatedID"]
            else "",
        }
        responses: list[requests.Response] = []
        for batch in enketo_batches([len(d) for _, d in files], max_size) if files else [[]]:
            parts: list[Part] = [
                ("xml_submission_file", "xml_submission_file", "text/xml", body_xml)
            ]
            parts += [(self.csrf[0], None, None, self.csrf[1].encode())] if self.csrf else []
            for i in batch:
                ctype = mimetypes.guess_type(files[i][0])[0] or "application/octet-stream"
                parts.append((files[i][0], files[i][0], ctype, files[i][1]))
            boundary = "----WebKitFormBoundary" + secrets.token_hex(8)
            resp = self._post(
                multipart(parts, boundary, False),
                f"multipart/form-data; boundary={boundary}",
                headers,
            )
            responses.append(resp)
            message = self._message(resp.content)
            if resp.status_code not in (201, 202):
                self.last_message, self.last_error = message, message or f"HTTP {resp.status_code}"
                return responses
            if len(responses) == 1:
                self.last_message = message
        self.last_ok = True
        return responses

    def _headers(self) -> dict[str, str]:
        return {
            "Date": formatdate(usegmt=True),
            "User-Agent": self.user_agent,
            "X-OpenRosa-Version": "1.0",
            "Accept-Encoding": SKIP_HEADER,
        }

    def _request(self, method: str, url: str) -> requests.Response:
        headers = self._headers()
        resp = self._raw(method, url, headers)
        if resp.status_code == 401 and self.username is not None:
            auth = self._auth_header(resp, method, url)
            if auth:
                resp = self._raw(method, url, {**headers, "Authorization": auth})
        if resp.status_code == 401:
            raise OpenRosaClientError("AuthRequired", "Forbidden. Authorization Required.", 401)
        if not 200 <= resp.status_code < 300:
            raise OpenRosaClientError(
                "RequestFailed", f"Request to {url} failed.", resp.status_code
            )
        return resp

    def _post(
        self, body: bytes, content_type: str, browser_headers: dict[str, str]
    ) -> requests.Response:
        url = self.submission_url()
        head = self._raw(
            "HEAD",
            url,
            {
                "X-OpenRosa-Version": "1.0",
                "Date": formatdate(usegmt=True),
                "User-Agent": SKIP_HEADER,
                "Accept-Encoding": SKIP_HEADER,
            },
        )
        auth = (
            self._auth_header(head, "POST", url)
            if head.status_code == 401 and self.username
            else None
        )
        headers = {
            **({"Authorization": auth} if auth else {}),
            **self._headers(),
            "Content-Type": content_type,
            **browser_headers,
        }
        return self._raw("POST", url, headers, body, redirects=False)

    def _auth_header(self, resp: requests.Response, method: str, url: str) -> str | None:
        """request's Auth.onResponse; Node joins repeated WWW-Authenticate headers with ', '."""
        header = ", ".join(resp.raw.headers.getlist("WWW-Authenticate"))
        for challenge in re.split(r", (?=[a-zA-Z])(?![a-zA-Z]*=)", header) if header else []:
            verb = challenge.split(" ")[0].lower()
            if verb == "basic":
                return (
                    "Basic "
                    + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
                )
            if verb == "digest":
                return self._digest(method, url, challenge)
        return None

    def _digest(self, method: str, url: str, header: str) -> str:
        c = {
            k: q or t
            for k, q, t in re.findall(r'([a-z0-9_-]+)=(?:"([^"]+)"|([a-z0-9_-]+))', header, re.I)
        }
        p = urlsplit(url)
        path = (p.path or "/") + (f"?{p.query}" if p.query else "")
        qop = "auth" if re.search(r"(^|,)\s*auth\s*($|,)", c.get("qop", "undefined")) else None
        nc, cnonce = ("00000001", uuid.uuid4().hex) if qop else (None, None)
        realm, nonce = c.get("realm", "undefined"), c.get("nonce", "undefined")  # JS string concat
        ha1 = md5_hex(f"{self.username}:{realm}:{self.password}".encode())
        if (c.get("algorithm") or "").lower() == "md5-sess":
            ha1 = md5_hex(f"{ha1}:{nonce}:{cnonce}".encode())
        ha2 = md5_hex(f"{method}:{path}".encode())
        mid = f"{nc}:{cnonce}:{qop}:" if qop else ""
        values = {
            "username": self.username,
            "realm": c.get("realm"),
            "nonce": c.get("nonce"),
            "uri": path,
            "qop": qop,
            "response": md5_hex(f"{ha1}:{nonce}:{mid}{ha2}".encode()),
            "nc": nc,
            "cnonce": cnonce,
            "algorithm": c.get("algorithm"),
            "opaque": c.get("opaque"),
        }
        return "Digest " + ", ".join(
            f"{k}={v}" if k in ("qop", "nc", "algorithm") else f'{k}="{v}"'
            for k, v in values.items()
            if v
        )

    @staticmethod
    def _children(node: Any, name: str | None = None) -> list[Any]:
        return [
            c
            for c in node.childNodes
            if c.nodeType == c.ELEMENT_NODE and name in (None, c.nodeName)
        ]

    @staticmethod
    def _message(body: bytes) -> str | None:
        """connection.js: xmlResponse.querySelector('OpenRosaResponse > message')."""
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            return None
        for el in root.iter():
            if _split(el.tag)[1] == "OpenRosaResponse":
                for child in el:
                    if _split(child.tag)[1] == "message":
                        return "".join(child.itertext())
        return None
