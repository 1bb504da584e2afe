"""Encrypt a submission exactly as ODK Collect does, so tests can round-trip the server's side.

Written from Collect's `EncryptionUtils.java` (EncryptedFormInformation, getCipher, encryptFile,
encryptSubmissionFiles, writeSubmissionManifest, getBase64EncryptedElementSignature) and on
purpose without server code, so a shared misreading cannot hide.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from lxml import etree

try:
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # cryptography < 46
    from cryptography.hazmat.primitives.ciphers.modes import CFB  # type: ignore[assignment]

ENCRYPTED_NS = "http://www.opendatakit.org/xforms/encrypted"
ORX_NS = "http://openrosa.org/xforms"
#: "RSA/NONE/OAEPWithSHA256AndMGF1Padding" as BouncyCastle implements it.
_OAEP = OAEP(mgf=MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


@dataclass
class CollectUpload:
    """What Collect posts: the envelope as xml_submission_file, and the .enc files."""

    envelope: bytes
    files: dict[str, bytes]
    #: The AES key, for tests that need to reach below the envelope.
    key: bytes


def _local_children(element: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in element if isinstance(c.tag, str) and etree.QName(c).localname == name]


def _identity(xml: bytes) -> tuple[str, str | None, str]:
    root = etree.fromstring(xml)
    ids = [i for m in _local_children(root, "meta") for i in _local_children(m, "instanceID")]
    return root.get("id"), root.get("version"), (ids[0].text or "").strip()


def encrypt_submission_as_collect(
    xml: bytes,
    attachments: Mapping[str, bytes],
    public_key: rsa.RSAPublicKey,
    *,
    key: bytes | None = None,
) -> CollectUpload:
    """Encrypt `xml` (saved as submission.xml) and its media, media first in the given order."""
    form_id, version, instance_id = _identity(xml)  # Collect takes these from the form/instance
    key = key or os.urandom(32)
    seed = bytearray(hashlib.md5(instance_id.encode("utf-8") + key).digest())
    wrapped = base64.b64encode(public_key.encrypt(key, _OAEP)).decode("ascii")

    signature_source = form_id + "\n"
    if version is not None:
        signature_source += version + "\n"
    signature_source += wrapped + "\n" + instance_id + "\n"

    files: dict[str, bytes] = {}
    for counter, (name, plain) in enumerate([*attachments.items(), ("submission.xml", xml)]):
        signature_source += f"{name}::{hashlib.md5(plain).hexdigest()}\n"  # appendFileSignature
        seed[counter % 16] = (seed[counter % 16] + 1) & 0xFF  # getCipher: ++ivSeedArray[...]
        padder = padding.PKCS7(128).padder()  # "PKCS5Padding" on a 16-byte block
        encryptor = Cipher(algorithms.AES(key), CFB(bytes(seed))).encryptor()
        padded = padder.update(plain) + padder.finalize()
        files[name + ".enc"] = encryptor.update(padded) + encryptor.finalize()

    digest = hashlib.md5(signature_source.encode("utf-8")).digest()
    signature = base64.b64encode(public_key.encrypt(digest, _OAEP)).decode("ascii")
    return CollectUpload(
        envelope=_manifest(form_id, version, wrapped, instance_id, list(attachments), signature),
        files=files,
        key=key,
    )


def _manifest(
    form_id: str,
    version: str | None,
    wrapped: str,
    instance_id: str,
    media: list[str],
    signature: str,
) -> bytes:
    """writeSubmissionManifest: element order and newlines as KXmlSerializer writes them."""
    e = f"{{{ENCRYPTED_NS}}}"
    root = etree.Element(e + "data", nsmap={None: ENCRYPTED_NS})
    root.set("id", form_id)
    if version is not None:
        root.set("version", version)
    root.set("encrypted", "yes")
    etree.SubElement(root, e + "base64EncryptedKey").text = wrapped
    meta = etree.SubElement(root, f"{{{ORX_NS}}}meta", nsmap={"orx": ORX_NS})
    etree.SubElement(meta, f"{{{ORX_NS}}}instanceID").text = instance_id
    meta.tail = "\n"
    for name in media:
        element = etree.SubElement(root, e + "media")
        etree.SubElement(element, e + "file").text = name + ".enc"
        element.tail = "\n"
    etree.SubElement(root, e + "encryptedXmlFile").text = "submission.xml.enc"
    etree.SubElement(root, e + "base64EncryptedElementSignature").text = signature
    return etree.tostring(root, encoding="unicode").encode("utf-8")  # no <?xml?>, as Collect
