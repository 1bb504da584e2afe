"""Durable, content-addressed file storage under instance/storage (submissions, attachments).

Files are written to a temporary name in chunks, fsynced, then renamed into place, so a
crash never leaves a half-written file under a real key. Keys are derived from content
(sha256), never from names a client sent, so no client can choose a path.
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

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredFile:
    key: str
    sha256: str
    size: int


class FileStorage:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not key or ".." in key or key.startswith("/"):
            raise ValueError(f"bad storage key {key!r}")
        return self.root / key

    def save_stream(self, stream: BinaryIO, max_bytes: int | None = None) -> StoredFile:
        """Copy a stream in chunks; raise TooLarge past `max_bytes` (nothing is kept)."""
        digest = hashlib.sha256()
        size = 0
        try:
            handle, temp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        except FileNotFoundError:  # directories are made when first missing, not each time
            self.root.mkdir(parents=True, exist_ok=True)
            handle, temp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise TooLarge(size)
                    digest.update(chunk)
                    out.write(chunk)
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
        return self._path(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


class TooLarge(Exception):
    def __init__(self, size: int):
        super().__init__(f"more than the allowed size (read {size} bytes)")
        self.size = size


def storage() -> FileStorage:
    """The app's storage, rooted at STORAGE_PATH or instance/storage."""
    root = current_app.config.get("STORAGE_PATH") or Path(current_app.instance_path) / "storage"
    return FileStorage(root)
