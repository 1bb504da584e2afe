"""Durable, content-addressed storage of submission attachments.

Small bodies (up to STORAGE_INLINE_MAX_BYTES: signatures, short recordings, most
phones' compressed photos) are kept in the database's `blobs` table, in the caller's
transaction: they are durable exactly when the submission row is, with no file to write
and fsync on the way to the 201 (the fsync cost more than all the rest of a receive;
bench/SUBMISSIONS.md). Larger ones are streamed to files under instance/storage, written
to a temporary name in chunks, fsynced, then renamed into place, so a crash never leaves a
half-written file under a real key. Keys are derived from content (sha256), never from
names a client sent, so no client can choose a path; a key starting with `db:` names a
blob in the database.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from sqlalchemy import Insert, select
from sqlalchemy.dialects import postgresql, sqlite

from server.blobs.models import Blob
from server.extensions import db
from server.prepared import PreparedInsert

CHUNK = 1024 * 1024
#: The key prefix of bodies kept in the database (Blob rows, by sha256).
IN_DATABASE = "db:"


@dataclass(frozen=True)
class StoredFile:
    key: str
    sha256: str
    size: int


class FileStorage:
    """Bodies in the database up to `inline_max_bytes` (0: never), in files beyond."""

    def __init__(self, root: str | os.PathLike, inline_max_bytes: int = 0):
        self.root = Path(root)
        self.inline_max_bytes = inline_max_bytes

    def _path(self, key: str) -> Path:
        if not key or ".." in key or key.startswith("/") or key.startswith(IN_DATABASE):
            raise ValueError(f"bad storage key {key!r}")
        return self.root / key

    def save_stream(
        self, stream: BinaryIO, max_bytes: int | None = None, content_type: str | None = None
    ) -> StoredFile:
        """Copy a stream; raise TooLarge past `max_bytes` (nothing is kept). A small body
        joins the caller's transaction: it is kept when the caller commits."""
        head = b""
        if self.inline_max_bytes:
            head = _read_up_to(stream, self.inline_max_bytes + 1)
            if len(head) <= self.inline_max_bytes:
                if max_bytes is not None and len(head) > max_bytes:
                    raise TooLarge(len(head))
                return _save_in_database(head, content_type)
        return self._save_file(head, stream, max_bytes)

    def _save_file(self, head: bytes, stream: BinaryIO, max_bytes: int | None) -> StoredFile:
        digest = hashlib.sha256()
        size = 0
        try:
            handle, temp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        except FileNotFoundError:  # directories are made when first missing, not each time
            self.root.mkdir(parents=True, exist_ok=True)
            handle, temp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out:
                chunk = head
                while chunk or (chunk := stream.read(CHUNK)):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise TooLarge(size)
                    digest.update(chunk)
                    out.write(chunk)
                    chunk = b""
                out.flush()
                os.fsync(out.fileno())
            sha256 = digest.hexdigest()
            key = f"{sha256[:2]}/{sha256[2:4]}/{sha256}"
            final = self._path(key)
            try:
                os.replace(temp_name, final)
            except FileNotFoundError:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp_name, final)
            return StoredFile(key=key, sha256=sha256, size=size)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    def save_bytes(self, data: bytes) -> StoredFile:
        return self.save_stream(io.BytesIO(data))

    def read_bytes(self, key: str) -> bytes:
        if key.startswith(IN_DATABASE):
            content = _content_in_database(key)
            if content is None:
                raise FileNotFoundError(key)
            return content
        return self._path(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        if key.startswith(IN_DATABASE):
            return io.BytesIO(self.read_bytes(key))
        return self._path(key).open("rb")

    def exists(self, key: str) -> bool:
        if key.startswith(IN_DATABASE):
            return _content_in_database(key) is not None
        return self._path(key).is_file()


def _read_up_to(stream: BinaryIO, size: int) -> bytes:
    """Up to `size` bytes: fewer only at the end of the stream."""
    parts, wanted = [], size
    while wanted > 0 and (part := stream.read(wanted)):
        parts.append(part)
        wanted -= len(part)
    return b"".join(parts)


def _save_in_database(content: bytes, content_type: str | None) -> StoredFile:
    """One INSERT that does nothing when the same body is there already (content-addressed:
    a resent attachment, or the same photo in two submissions, is kept once)."""
    sha256 = hashlib.sha256(content).hexdigest()
    _INSERT_BLOB.execute(
        db.session,
        {
            "sha256": sha256,
            "md5": hashlib.md5(content).hexdigest(),  # noqa: S324 - protocol checksum
            "content_type": content_type or "application/octet-stream",
            "content": content,
        },
    )
    return StoredFile(key=f"{IN_DATABASE}{sha256}", sha256=sha256, size=len(content))


def _insert_blob(dialect_name: str) -> Insert:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(Blob.__table__).on_conflict_do_nothing(index_elements=["sha256"])


_INSERT_BLOB = PreparedInsert(_insert_blob, ["sha256", "md5", "content_type", "content"])


def _content_in_database(key: str) -> bytes | None:
    sha256 = key.removeprefix(IN_DATABASE)
    content = db.session.scalar(select(Blob.content).where(Blob.sha256 == sha256))
    return bytes(content) if content is not None else None


class TooLarge(Exception):
    def __init__(self, size: int):
        super().__init__(f"more than the allowed size (read {size} bytes)")
        self.size = size


def storage() -> FileStorage:
    """The app's storage, rooted at STORAGE_PATH or instance/storage."""
    root = current_app.config.get("STORAGE_PATH") or Path(current_app.instance_path) / "storage"
    return FileStorage(root, current_app.config["STORAGE_INLINE_MAX_BYTES"])
