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
LIST_NS, MANIFEST_NS = "http://openrosa.org/xforms/xformsList", "http://openrosa.org/xforms/xformsManifest"
_PARAM = re.compile(r'([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
_DAYS, _MONTHS = "Mon Tue Wed Thu Fri Sat Sun".split(), "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
# CollectThenSystemContentTypeMapper: Collect's own table first, then Android's MimeTypeMap.
_COLLECT_TYPES = {"amr": "audio/amr", "oga": "audio/ogg", "ogv": "video/ogg", "webm": "video/webm"}
_ANDROID_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "mp3": "audio/mpeg",
                  "m4a": "audio/mpeg", "3gp": "video/3gpp", "mp4": "video/mp4", "wav": "audio/x-wav",
                  "csv": "text/comma-separated-values", "xml": "text/xml", "txt": "text/plain"}


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
        disp = f'form-data; name="{_q(name)}"' + (f'; filename="{_q(filename)}"' if filename else "")
        head = f"--{boundary}\r\nContent-Disposition: {disp}\r\n"
        head += (f"Content-Type: {ctype}\r\n" if ctype else "") + (
            f"Content-Length: {len(data)}\r\n" if part_lengths else ""
        )
        out += [head.encode(), b"\r\n", data, b"\r\n"]
    return b"".join([*out, f"--{boundary}--\r\n".encode()])


def _q(value: str) -> str:
    return value.replace("\n", "%0A").replace("\r", "%0D").replace('"', "%22")


def _split(tag: str) -> tuple[str, str]:
    return (tag[1:].partition("}")[0].lower(), tag.partition("}")[2]) if tag[0] == "{" else ("", tag)


def _fields(el: Any, ns: str) -> dict[str, str]:
    return {_split(c.tag)[1]: "".join(c.itertext()).strip() for c in el if _split(c.tag)[0] == ns}


def _dom_text(node: Any) -> str:
    return node.data if node.nodeType == node.TEXT_NODE else "".join(map(_dom_text, node.childNodes))


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

    def _raw(self, method: str, url: str, headers: dict[str, str], body: bytes | None = None,
             redirects: bool = True) -> requests.Response:
        resp = self.session.request(method, url, headers=headers, data=body,
                                    allow_redirects=redirects, timeout=(30, 60))
        for r in [*resp.history, resp]:
            sent = {k: v for k, v in r.request.headers.items() if v != SKIP_HEADER}
            self.requests_log.append((str(r.request.method), str(r.request.url), sent, r.status_code))
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

    def __init__(self, server_url: str, username: str | None = None, password: str | None = None,
                 device_id: str = "collect:abc123") -> None:
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

    def form_list(self, form_id: str | None = None, verbose: bool = False,
                  list_all_versions: bool = False) -> tuple[requests.Response, list[dict[str, Any]]]:
        """GET server/formList. Collect itself never sends formID/verbose/listAllVersions."""
        url = self.server_url.rstrip("/") + "/formList"
        extra = {"formID": form_id, "verbose": "true" if verbose else None,
                 "listAllVersions": "true" if list_all_versions else None}
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
                raise OpenRosaClientError("ParseError", f"<xform> without formID/name/downloadUrl: {f}")
            h = f.get("hash")
            f["hash"] = h[4:] if h and h.startswith("md5:") else None
            forms.append(f)
        return resp, forms

    def download_form(self, entry: dict[str, Any], verify_hash: bool = True) -> bytes:
        if not entry.get("hash"):
            raise OpenRosaClientError("FormWithNoHash", entry["formID"])
        body = self._fetch_bytes(entry["downloadUrl"])
        if verify_hash and md5_hex(body) != entry["hash"]:
            raise OpenRosaClientError("HashMismatch", f"{md5_hex(body)} != list hash {entry['hash']}")
        return body

    def manifest(self, entry: dict[str, Any]) -> list[dict[str, Any]]:
        if not entry.get("manifestUrl"):
            return []
        resp, root = self._get_xml(entry["manifestUrl"])
        if root is None:
            raise OpenRosaClientError("ServerError", entry["manifestUrl"], resp.status_code)
        if "X-OpenRosa-Version" not in resp.headers or _split(root.tag) != (MANIFEST_NS.lower(), "manifest"):
            raise OpenRosaClientError("ParseError", "not an OpenRosa <manifest>")
        files = []
        for el in root:
            if _split(el.tag)[0] != MANIFEST_NS.lower() or _split(el.tag)[1].lower() != "mediafile":
                continue
            f = _fields(el, MANIFEST_NS.lower())
            name, digest, url = f.get("filename"), f.get("hash"), f.get("downloadUrl")
            if not (name and digest and url):  # parseManifest returns null: whole manifest rejected
                raise OpenRosaClientError("ParseError", f"<mediaFile> incomplete: {f}")
            files.append({"filename": name.rsplit("/", 1)[-1], "hash": digest[4:], "downloadUrl": url,
                          "isEntityList": el.get("type") == "entityList",
                          "integrityUrl": f.get("integrityUrl")})
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

    def entity_integrity(self, media_file: dict[str, Any], ids: list[str]) -> requests.Response:
        """OpenRosaClient.isDeleted: GET integrityUrl?id=a,b (comma encoded) plus deviceID."""
        p = urlsplit(media_file["integrityUrl"])
        param = "id=" + quote(",".join(ids), safe="!'()*")
        url = urlunsplit(p._replace(query=f"{p.query}&{param}" if p.query else param))
        return self._send("GET", self.with_device_id(url))

    def submit(self, xml: bytes, attachments: dict[str, bytes] | None = None,
               max_post_bytes: int = 10_000_000, instance_name: str | None = None) -> list[requests.Response]:
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
            raise OpenRosaClientError("NotOpenRosaEndpoint", f"HEAD status {head.status_code}", head.status_code)
        name = instance_name or self._instance_name(xml)
        files = sorted((attachments or {}).items())
        responses: list[requests.Response] = []
        for start, end, incomplete in collect_chunks(len(xml), [len(d) for _, d in files], limit):
            parts: list[Part] = [("xml_submission_file", name, "text/xml", xml)]
            parts += [(fn, fn, self.content_type(fn), data) for fn, data in files[start:end]]
            if incomplete:
                parts.append(("*isIncomplete*", None, None, b"yes"))
            boundary = str(uuid.uuid4())
            resp = self._send("POST", url, multipart(parts, boundary, True),
                              f"multipart/form-data; boundary={boundary}")
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
        return _COLLECT_TYPES.get(ext) or _ANDROID_TYPES.get(ext) or guessed or "application/octet-stream"

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
            except Exception:  # noqa: BLE001 - a SAXException leaves the parser invalid
                message = None
        self.last_message, self.last_ok = message, code in (201, 202)
        if not self.last_ok:
            reason = f"Error: {resp.reason} ({code}) at {url}"
            self.last_error = {200: "Error: Network login failure? Again?", 401: reason}.get(code) or (
                f"Error: {message}" if message is not None else None) or (
                "Failed to upload. Please make sure the form is configured to accept submissions on the server"
                if code == 400 else reason)

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
            raise OpenRosaClientError("FetchError", f"ContentType: {ctype} returned from: {url} is not text/xml")
        try:
            return resp, ElementTree.fromstring(resp.content)
        except ElementTree.ParseError as e:
            raise OpenRosaClientError("FetchError", f"unparseable XML: {e}") from e

    # --- OkHttp + okhttp-digest -------------------------------------------------------------
    def _send(self, method: str, url: str, body: bytes | None = None,
              content_type: str | None = None) -> requests.Response:
        p = urlsplit(url)
        key = f"{p.scheme}:{p.hostname}:{p.port or (443 if p.scheme == 'https' else 80)}"
        headers = {"User-Agent": self.USER_AGENT, "X-OpenRosa-Version": "1.0", "Date": collect_date(),
                   "Accept-Encoding": "gzip", "Connection": "Keep-Alive"}
        if content_type:
            headers["Content-Type"] = content_type
        cached = key in self.auth_cache
        proactive = self._with_state(method, url) if cached else None
        resp = self._follow_ups(method, url, headers, body, proactive, key)
        if cached and resp.status_code == 401 and key in self.auth_cache:
            self.auth_cache.discard(key)  # "Cached authentication expired": resend without it
            resp = self._follow_ups(method, url, headers, body, None, key)
        return resp

    def _follow_ups(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
                    authorization: str | None, key: str) -> requests.Response:
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

    def _authenticate(self, resp: requests.Response, method: str, url: str, previous: str | None) -> str | None:
        values = resp.raw.headers.getlist("WWW-Authenticate")
        for scheme in (m.group(1).lower() for v in values for m in
                       re.finditer(r"(?:^|,)\s*([A-Za-z][\w!#$%&'*+.^`|~-]*)(?=\s+[^\s=,]+=|\s*(?:,|$))", v)):
            if scheme == "digest":
                header = next(v for v in values if v.startswith("Digest"))
                self.challenge = {k: re.sub(r"\\(.)", r"\1", q) if q else t
                                  for k, q, t in _PARAM.findall(header[7:])}
                if "nonce" not in self.challenge:
                    raise OpenRosaClientError("FetchError", f"missing nonce in challenge header: {header}")
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
                raise OpenRosaClientError("FetchError", f"None of the qop methods is supported: {c['qop']}")
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
        pairs = [("username", self.username), ("realm", realm), ("nonce", nonce), ("uri", uri),
                 ("response", h(f"{ha1}:{nonce}:{tail}", "ascii"))]
        pairs += [("qop", qop), ("nc", nc), ("cnonce", self.cnonce)] if qop else []
        pairs += [("algorithm", algorithm)] + ([("opaque", c["opaque"])] if "opaque" in c else [])
        quoted = [f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                  if k not in ("nc", "qop", "algorithm") else f"{k}={v}" for k, v in pairs]
        return "Digest " + ", ".join(quoted)
