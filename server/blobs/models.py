"""Content-addressed file bodies (form sources, XForms' media), kept in the database.

Keeping them in the same transaction as the rows that point at them means a failed
upload leaves nothing behind.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import LargeBinary, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from server.extensions import db


class Blob(db.Model):
    __tablename__ = "blobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    #: md5 is what OpenRosa clients compare ("md5:..." in formList and manifests).
    md5: Mapped[str] = mapped_column(String(32))
    content_type: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    @property
    def size(self) -> int:
        return len(self.content)


def store_blob(content: bytes, content_type: str) -> Blob:
    """Return the blob holding `content`, adding it to the session if it is new."""
    sha256 = hashlib.sha256(content).hexdigest()
    existing = db.session.scalar(select(Blob).where(Blob.sha256 == sha256))
    if existing is not None:
        return existing
    blob = Blob(
        sha256=sha256,
        md5=hashlib.md5(content).hexdigest(),  # noqa: S324 - protocol checksum, not security
        content_type=content_type,
        content=content,
    )
    db.session.add(blob)
    return blob
