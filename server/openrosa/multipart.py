"""The parts of a submission POST: small plain bodies split here, every other one by werkzeug.

Werkzeug's streaming parser finds each boundary with a regular expression tried at every
byte of a part: for a 20 KB photo that cost more than storing it (bench/README.md). A body
of at most IN_MEMORY_BYTES (werkzeug keeps those in memory too) that is plainly well formed
is split here with `bytes.find`: CRLF line ends, `--boundary` nowhere but where a delimiter
belongs, only file parts, headers on one line each. Any other body, and every larger or
chunked one, goes to werkzeug (`request.files`, streamed to temporary files), whose answer
stands: for what is split here it is the same, part for part (tests/test_openrosa_multipart.py).
"""

from __future__ import annotations

import io

from flask import Request
from werkzeug.datastructures import FileStorage, Headers, MultiDict
from werkzeug.http import parse_options_header

#: Werkzeug's own limit for keeping a body in memory (formparser.default_stream_factory).
IN_MEMORY_BYTES = 500 * 1024


def posted_files(request: Request) -> MultiDict[str, FileStorage]:
    """The file parts of a multipart/form-data request, as `request.files` gives them."""
    length = request.content_length
    if length is not None and length <= IN_MEMORY_BYTES:
        try:
            boundary = request.mimetype_params.get("boundary", "").encode("ascii")
        except UnicodeEncodeError:
            boundary = b""
        if boundary:
            # cache=True: should werkzeug be needed after all, it parses these same bytes.
            files = split(request.get_data(cache=True), boundary, request.max_form_parts)
            if files is not None:
                return files
    return request.files


def split(body: bytes, boundary: bytes, max_parts: int | None) -> MultiDict | None:
    """The file parts of a plain multipart body; None if it is not plain (werkzeug decides)."""
    dash = b"--" + boundary
    delimiter = b"\r\n" + dash
    if not body.startswith(dash + b"\r\n"):
        return None
    files = []
    start = len(dash) + 2
    while True:
        end = body.find(delimiter, start)
        if end == -1:
            return None  # no closing delimiter
        part = _file_part(body[start:end])
        if part is None:
            return None
        files.append(part)
        after = end + len(delimiter)
        if body[after : after + 2] == b"--":
            break
        if body[after : after + 2] != b"\r\n":
            return None  # a delimiter with trailing spaces, or bare CR/LF
        start = after + 2
    if body.count(dash) != len(files) + 1:
        return None  # `--boundary` inside a part or the epilogue
    if max_parts is not None and len(files) > max_parts:
        return None  # werkzeug answers 413
    return MultiDict(files)


def _file_part(part: bytes) -> tuple[str | None, FileStorage] | None:
    """(name, file) for one part: headers, a blank line, the content."""
    blank = part.find(b"\r\n\r\n")
    if blank == -1:
        return None
    head = part[:blank]
    if not head.count(b"\r") == head.count(b"\n") == head.count(b"\r\n"):
        return None  # a bare CR or LF in the headers
    headers = []
    for raw_line in head.split(b"\r\n"):
        if raw_line[:1] in (b" ", b"\t"):
            return None  # a folded header line
        line = raw_line.strip(b" \t")
        if line:
            try:
                name, _, value = line.decode().partition(":")
            except UnicodeDecodeError:
                return None
            headers.append((name.strip(" \t"), value.strip(" \t")))
    part_headers = Headers(headers)
    disposition = part_headers.get("content-disposition")
    if disposition is None:
        return None
    _, options = parse_options_header(disposition)
    filename = options.get("filename")
    if filename is None:
        return None  # a form field, not a file
    name = options.get("name")
    content = io.BytesIO(part[blank + 4 :])
    return name, FileStorage(content, filename, name, headers=part_headers)
