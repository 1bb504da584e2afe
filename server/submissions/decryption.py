"""Opening encrypted submissions in the worker, unattended, with no private key at rest in clear.

Design (chosen over keeping an unlocked key in Redis or the database, which would put the
key in every backup and in reach of anything that can read them):

- The database holds each project's private key only encrypted under its passphrase
  (server.projects.keys), exactly as ODK Central stores managed keys.
- The worker gets passphrases from a secret file named by CASEBRIDGE_KEY_PASSPHRASES_FILE:
  a JSON object {"<project id>": "<passphrase>"}, owned by the service user, mode 0600
  (a file others can read is refused), kept outside the instance folder and out of database
  backups. `casebridge keys unlock --project ID` checks a passphrase and writes it there.
- Keys that are not managed here (a form with its own base64RsaPublicKey, e.g. one made
  with ODK Briefcase) come from plain PEM files: CASEBRIDGE_PRIVATE_KEY_FILES, a JSON object
  {"<project id>": "/path/key.pem" or [paths]}, with the same 0600 rule.
- Unlocked keys live only in the worker's memory (PBKDF2 runs once per key and process);
  the file is re-read when it changes, so unlocking needs no restart. Plaintext is never
  written: the envelope stays the stored submission, the XML is decrypted per job.

The trade-off: whoever can read the service user's files (the secret file and the database)
can decrypt, as the worker can; an attacker with only the database, or a backup, cannot.
Central avoids even that by asking for the passphrase at every export, which would leave
cases unmade until an administrator came by; unattended normalization needs the secret here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from flask import current_app
from sqlalchemy import select

from server.extensions import db
from server.forms.models import Form
from server.projects.keys import unlock
from server.projects.models import ProjectKey
from server.storage import CHUNK, storage
from server.submissions.encryption import (
    ENC_SUFFIX,
    OAEP_SHA256,
    EncryptionError,
    Envelope,
    WrongPassphrase,
    decrypt_submission_xml,
    iter_decrypt_file,
    load_private_key_pem,
    parse_envelope,
    public_key_base64_for_xform,
    submission_ivs,
    unwrap_submission_key,
)
from server.submissions.models import Submission, SubmissionAttachment, SubmissionState
from server.submissions.queueing import WAITING_STATES, enqueue

log = logging.getLogger(__name__)

#: The `field` of the problems normalization records for what this module cannot open.
PROBLEM_FIELD = "encryption"
_CACHE_LIMIT = 64
#: (fingerprint of the locked key, digest of the passphrase) -> the key, or None if refused.
_unlocked: dict[tuple[bytes, bytes], rsa.RSAPrivateKey | None] = {}
#: (path, mtime, size) -> the key in a plain PEM file.
_pem_keys: dict[tuple[str, int, int], rsa.RSAPrivateKey] = {}


class NotDecrypted(Exception):
    """Why an encrypted submission was not opened; the message is for administrators."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def plaintext_xml(submission: Submission) -> bytes:
    """The submission's XML: as stored, or decrypted in memory for an encrypted one."""
    if not submission.encrypted:
        return submission.xml
    try:
        envelope = parse_envelope(submission.xml)
    except EncryptionError as error:
        raise NotDecrypted(error.message) from None
    files = {a.name: a for a in submission.attachments}
    encrypted_xml = files.get(envelope.encrypted_xml_file)
    if encrypted_xml is None or encrypted_xml.blob_key is None:
        raise NotDecrypted(
            f"Encrypted; its {envelope.encrypted_xml_file} has not arrived yet. Once the "
            "phone has sent it, `casebridge keys process --project "
            f"{submission.form.project_id}` processes it.",
        )
    project_id = submission.form.project_id
    private_key = _private_key(project_id, submission.form_def.public_key)
    try:
        xml = decrypt_submission_xml(
            envelope, storage().read_bytes(encrypted_xml.blob_key), private_key
        )
        media = [files.get(name) for name in envelope.media_files]
        if all(m is not None and m.blob_key is not None for m in media):
            _check_signature(envelope, private_key, xml, media)
    except EncryptionError as error:
        raise NotDecrypted(error.message) from None
    return xml


def waiting_submissions(project_id: int) -> list[Submission]:
    """Encrypted submissions that normalization could not open (and so made no case)."""
    rows = db.session.scalars(
        select(Submission)
        .join(Form)
        .where(
            Form.project_id == project_id,
            Submission.encrypted,
            Submission.state == SubmissionState.NEEDS_REVIEW,
            Submission.case_id.is_(None),
        )
        .order_by(Submission.id)
    )
    return [s for s in rows if any(p.get("field") == PROBLEM_FIELD for p in s.problems)]


def requeue_waiting(project_id: int) -> int:
    """Queue them again, e.g. once the key is unlocked; the caller commits."""
    waiting = (*WAITING_STATES, SubmissionState.NEEDS_REVIEW)
    return sum(enqueue(s, from_states=waiting) for s in waiting_submissions(project_id))


# ---- the signature, streamed -------------------------------------------------------------


def _chunks(attachment: SubmissionAttachment) -> Iterator[bytes]:
    with storage().open(attachment.blob_key) as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _check_signature(
    envelope: Envelope,
    private_key: rsa.RSAPrivateKey,
    xml: bytes,
    media: list[SubmissionAttachment],
) -> None:
    """Collect's signature over every file (as `encryption.signature_source` builds it),
    with each medium decrypted as a stream: a video need not fit in memory."""
    if envelope.signature is None:
        raise EncryptionError(
            "The encrypted submission has no base64EncryptedElementSignature, so it cannot be "
            "checked for tampering."
        )
    key = unwrap_submission_key(private_key, envelope.encrypted_key)
    ivs = submission_ivs(envelope.instance_id, key, len(envelope.files))
    lines = [envelope.form_id]
    if envelope.version is not None:
        lines.append(envelope.version)
    lines += [envelope.encrypted_key_text, envelope.instance_id]
    for name, iv, attachment in zip(envelope.media_files, ivs[:-1], media, strict=True):
        digest = hashlib.md5(usedforsecurity=False)
        for plain in iter_decrypt_file(key, iv, _chunks(attachment), name):
            digest.update(plain)
        lines.append(f"{name.removesuffix(ENC_SUFFIX)}::{digest.hexdigest()}")
    xml_digest = hashlib.md5(xml, usedforsecurity=False).hexdigest()
    lines.append(f"{envelope.encrypted_xml_file.removesuffix(ENC_SUFFIX)}::{xml_digest}")
    source = "".join(f"{line}\n" for line in lines).encode()
    expected = hashlib.md5(source, usedforsecurity=False).digest()
    try:
        signed = private_key.decrypt(envelope.signature, OAEP_SHA256)
    except ValueError:
        signed = b""
    if not hmac.compare_digest(signed, expected):
        raise EncryptionError(
            "The encrypted submission's signature does not match its contents: the envelope "
            "or one of its files was altered or swapped after it left the device."
        )


# ---- keys --------------------------------------------------------------------------------


def not_unlocked_message(project_id: int) -> str:
    return (
        "Encrypted; the project's key is not unlocked on this server. An administrator can "
        f"run `casebridge keys unlock --project {project_id}`; it is then processed."
    )


def key_problem(project_id: int, public_key: str) -> str | None:
    """Why this process could not decrypt for that key, or None if it can (`keys status`)."""
    try:
        _private_key(project_id, public_key)
    except NotDecrypted as error:
        return error.message
    return None


def _private_key(project_id: int, public_key: str | None) -> rsa.RSAPrivateKey:
    if not public_key:
        raise NotDecrypted("The submission is encrypted but its form version has no public key.")
    refused: list[ProjectKey] = []
    for private_key in _candidate_keys(project_id, public_key, refused):
        if public_key_base64_for_xform(private_key) == public_key:
            return private_key
    if refused:
        raise NotDecrypted(
            f"Encrypted; the passphrase this server has for project {project_id} does not "
            f"unlock its key. Run `casebridge keys unlock --project {project_id}` with the "
            "right one; it is then processed."
        )
    raise NotDecrypted(not_unlocked_message(project_id))


def _candidate_keys(
    project_id: int, public_key: str, refused: list[ProjectKey]
) -> Iterator[rsa.RSAPrivateKey]:
    """Keys this process has for the project: its managed keys (if it has the passphrase)
    matching the form's public key, then plain PEM files; `refused` collects the locked ones."""
    passphrase = read_secret_file(current_app.config.get("KEY_PASSPHRASES_FILE")).get(
        str(project_id)
    )
    if isinstance(passphrase, str):
        managed = db.session.scalars(
            select(ProjectKey).where(
                ProjectKey.project_id == project_id, ProjectKey.public_key == public_key
            )
        )
        for key in managed:
            unlocked = _unlock_cached(key, passphrase)
            if unlocked is None:
                refused.append(key)
            else:
                yield unlocked
    for path in _pem_paths(project_id):
        yield _pem_key(path)


def _unlock_cached(key: ProjectKey, passphrase: str) -> rsa.RSAPrivateKey | None:
    """PBKDF2 once per key, passphrase and process; a refusal is remembered too."""
    locked = hashlib.sha256(key.encrypted_private_key + key.salt + key.iv).digest()
    cache_key = (locked, hashlib.sha256(key.salt + passphrase.encode()).digest())
    if cache_key not in _unlocked:
        if len(_unlocked) >= _CACHE_LIMIT:
            _unlocked.clear()
        try:
            _unlocked[cache_key] = unlock(key, passphrase)
        except WrongPassphrase:
            log.warning("the passphrase for project %s does not unlock its key", key.project_id)
            _unlocked[cache_key] = None
    return _unlocked[cache_key]


def _pem_paths(project_id: int) -> list[str]:
    configured = current_app.config.get("PRIVATE_KEY_FILES") or {}
    if not isinstance(configured, dict):
        raise NotDecrypted("PRIVATE_KEY_FILES must map project ids to PEM file paths.")
    paths = configured.get(str(project_id), configured.get(project_id)) or []
    return [paths] if isinstance(paths, str) else list(paths)


def _pem_key(path: str) -> rsa.RSAPrivateKey:
    status = _private_stat(Path(path))
    cache_key = (path, status.st_mtime_ns, status.st_size)
    if cache_key not in _pem_keys:
        if len(_pem_keys) >= _CACHE_LIMIT:
            _pem_keys.clear()
        try:
            _pem_keys[cache_key] = load_private_key_pem(Path(path).read_bytes())
        except EncryptionError as error:
            raise NotDecrypted(f"The key file {path}: {error.message}") from None
    return _pem_keys[cache_key]


def _private_stat(path: Path) -> os.stat_result:
    """The file's status; refuse a secret that other users can read (as ssh does)."""
    try:
        status = path.stat()
    except OSError:
        raise NotDecrypted(
            f"The key file {path} named in this server's configuration cannot be read.",
        ) from None
    if os.name == "posix" and stat.S_IMODE(status.st_mode) & 0o077:
        raise NotDecrypted(
            f"{path} can be read by other users, so it is not used: "
            f"`chmod 600 {path}` (owned by the user the worker runs as).",
        )
    return status


def read_secret_file(path: str | os.PathLike | None) -> dict[str, object]:
    """The passphrases file: {} when none is configured or it does not exist yet."""
    if not path or not Path(path).exists():
        return {}
    _private_stat(Path(path))
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise NotDecrypted(f"{path} is not a JSON object of project ids and passphrases.") from None
    if not isinstance(content, dict):
        raise NotDecrypted(f"{path} is not a JSON object of project ids and passphrases.")
    return content


def store_passphrase(path: str | os.PathLike, project_id: int, passphrase: str) -> None:
    """Add a project's passphrase to the secret file: written whole, 0600, then renamed."""
    path = Path(path)
    content = read_secret_file(path)
    content[str(project_id)] = passphrase
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(content, out, indent=2, sort_keys=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
