"""ODK form encryption: open what Collect encrypted, and keep a private key under a passphrase.

Byte for byte as ODK Collect encrypts (`EncryptionUtils.java`), ODK Central decrypts
(`lib/util/crypto.js`) and ODK Briefcase checks the signature (`FileSystemUtils.java`):

- the 256-bit AES key is wrapped with RSA-OAEP, SHA-256 for both OAEP and MGF1 (Collect's
  "RSA/NONE/OAEPWithSHA256AndMGF1Padding" from the BouncyCastle provider; Central's
  `quarantine/oaep.js` unpads with SHA-256 MGF1);
- each file is AES-256-CFB (128-bit segments) with PKCS#7 padding;
- IVs start from md5(instanceID as UTF-8 + raw AES key); before file n (counting from 0) byte
  n % 16 is incremented, and the IVs are used for the media in envelope order, then the XML;
- the signature is RSA-OAEP of md5 over "formId\\n[version\\n]base64EncryptedKey\\ninstanceID\\n"
  then "name::md5hex\\n" for each decrypted media file and for submission.xml.

Nothing here touches the database: callers persist `ManagedKey` fields and the decrypted files.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from lxml import etree

from server.forms.problems import FormRejected
from server.forms.xform import instance_version, local_name, parse_xml_safely
from server.submissions.instance import SAFE_NAME

try:  # cryptography >= 46 files CFB under "decrepit"; the ODK protocol still requires it
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.modes import CFB  # type: ignore[assignment]

#: Collect's ASYMMETRIC_ALGORITHM: SHA-256 for OAEP *and* MGF1 (BouncyCastle's reading).
OAEP_SHA256 = OAEP(mgf=MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
AES_KEY_BYTES = 32  # Collect SYMMETRIC_KEY_LENGTH = 256
BLOCK_BYTES = 16  # Collect IV_BYTE_LENGTH; also the AES block and the PKCS#7 pad unit
ENC_SUFFIX = ".enc"

#: Central's generateManagedKey: 2048-bit RSA, 16-byte salt, PBKDF2-HMAC-SHA256 to a 32-byte
#: key, AES-256-CBC with a 16-byte IV over the PKCS#8 PEM. Central iterates 128,000 times;
#: new keys here use OWASP's 2023 figure, and `ManagedKey.iterations` keeps whichever was used.
RSA_KEY_BITS = 2048
SALT_BYTES = 16
PBKDF2_ITERATIONS = 600_000
CENTRAL_PBKDF2_ITERATIONS = 128_000


class EncryptionError(Exception):
    """An envelope, file or key that cannot be opened; the message says why, for an admin."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class WrongPassphrase(EncryptionError):
    """The passphrase does not open this private key."""


# ---- the envelope ------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """The plaintext manifest Collect sends in place of submission.xml."""

    form_id: str
    #: None when the form has no version (Collect then leaves it out of the signature too).
    version: str | None
    instance_id: str
    encrypted_key: bytes
    #: The encrypted files, in envelope order: the order their IVs were used.
    media_files: list[str]
    encrypted_xml_file: str
    signature: bytes | None
    #: base64EncryptedKey as written: the signature covers this text, not the bytes.
    encrypted_key_text: str

    @property
    def files(self) -> list[str]:
        """Every encrypted file, in decryption (IV) order."""
        return [*self.media_files, self.encrypted_xml_file]


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    """Children by local name: Collect, Enketo and Aggregate use different namespaces."""
    return [c for c in element if isinstance(c.tag, str) and local_name(c) == name]


def _text(element: etree._Element | None) -> str:
    return "" if element is None else (element.text or "").strip()


def _b64(text: str, what: str) -> bytes:
    try:
        value = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise EncryptionError(f"The encrypted submission's {what} is not valid base64.") from None
    if not value:
        raise EncryptionError(f"The encrypted submission's {what} is empty.")
    return value


def _enc_name(name: str, what: str) -> str:
    if not name:
        raise EncryptionError(f"The encrypted submission names an empty {what}.")
    if not name.endswith(ENC_SUFFIX) or name == ENC_SUFFIX or not SAFE_NAME.match(name):
        raise EncryptionError(
            f"The encrypted submission's {what} '{name}' must be a plain file name ending in .enc."
        )
    return name


def parse_envelope(xml: bytes) -> Envelope:
    """Read an encrypted submission's manifest, refusing anything we could not decrypt."""
    try:
        root = parse_xml_safely(xml, what="encrypted submission")
    except FormRejected as error:
        raise EncryptionError(str(error)) from None
    form_id = (root.get("id") or "").strip()
    if not form_id:
        raise EncryptionError("The encrypted submission does not say which form it is for (no id).")
    key_elements = _children(root, "base64EncryptedKey")
    if len(key_elements) != 1:
        raise EncryptionError(
            "The encrypted submission must have exactly one <base64EncryptedKey>; "
            f"it has {len(key_elements)}."
        )
    key_text = _text(key_elements[0])
    instance_ids = [i for m in _children(root, "meta") for i in _children(m, "instanceID")]
    instance_id = _text(instance_ids[0]) if len(instance_ids) == 1 else ""
    if not instance_id:
        raise EncryptionError("The encrypted submission has no single meta/instanceID.")
    xml_files = _children(root, "encryptedXmlFile")
    if len(xml_files) != 1:
        raise EncryptionError("The encrypted submission must name one <encryptedXmlFile>.")
    xml_file = _enc_name(_text(xml_files[0]), "encryptedXmlFile")
    media = [
        _enc_name(_text(f), "media file")
        for m in _children(root, "media")
        for f in _children(m, "file")
    ]
    if len(set(media + [xml_file])) != len(media) + 1:
        raise EncryptionError("The encrypted submission names the same file twice.")
    signatures = _children(root, "base64EncryptedElementSignature")
    signature_text = _text(signatures[0]) if signatures else ""
    return Envelope(
        form_id=form_id,
        version=root.get("version"),
        instance_id=instance_id,
        encrypted_key=_b64(key_text, "base64EncryptedKey"),
        media_files=media,
        encrypted_xml_file=xml_file,
        signature=_b64(signature_text, "signature") if signature_text else None,
        encrypted_key_text=key_text,
    )


# ---- decryption --------------------------------------------------------------------------


@dataclass(frozen=True)
class DecryptedSubmission:
    xml: bytes
    #: Plaintext attachments by their name without ".enc", in envelope order.
    attachments: dict[str, bytes]


def _rsa_decrypt(private_key: rsa.RSAPrivateKey, data: bytes) -> bytes | None:
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise EncryptionError("ODK form encryption needs an RSA private key.")
    try:
        return private_key.decrypt(data, OAEP_SHA256)
    except ValueError:
        return None


def unwrap_submission_key(private_key: rsa.RSAPrivateKey, encrypted_key: bytes) -> bytes:
    """The submission's AES key, from base64EncryptedKey (RSA-OAEP, SHA-256 / MGF1-SHA-256)."""
    key = _rsa_decrypt(private_key, encrypted_key)
    if key is None or len(key) != AES_KEY_BYTES:
        raise EncryptionError(
            "This submission's key cannot be opened with this private key: it was encrypted "
            "for a different key (for example an older version of the form), or was altered."
        )
    return key


def submission_ivs(instance_id: str, key: bytes, count: int) -> list[bytes]:
    """The IV of each of a submission's first `count` files, in envelope order."""
    seed = bytearray(hashlib.md5(instance_id.encode() + key, usedforsecurity=False).digest())
    ivs = []
    for index in range(count):
        seed[index % BLOCK_BYTES] = (seed[index % BLOCK_BYTES] + 1) % 256  # Java's byte ++
        ivs.append(bytes(seed))
    return ivs


def iter_decrypt_file(key: bytes, iv: bytes, chunks: Iterable[bytes], name: str) -> Iterator[bytes]:
    """Decrypt one .enc file as it streams in; raises on a bad end only after the last chunk."""
    decryptor = Cipher(algorithms.AES(key), CFB(iv)).decryptor()
    unpadder = padding.PKCS7(BLOCK_BYTES * 8).unpadder()
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if plain := unpadder.update(decryptor.update(chunk)):
            yield plain
    if size == 0 or size % BLOCK_BYTES:
        raise EncryptionError(
            f"'{name}' is {size} bytes, not a whole number of {BLOCK_BYTES}-byte blocks: "
            "it was cut short or is not an ODK-encrypted file."
        )
    try:
        yield unpadder.update(decryptor.finalize()) + unpadder.finalize()
    except ValueError:
        raise EncryptionError(
            f"'{name}' does not decrypt: it was altered, belongs to another submission, "
            "or was sent in the wrong order."
        ) from None


def decrypt_file(key: bytes, iv: bytes, data: bytes, name: str) -> bytes:
    return b"".join(iter_decrypt_file(key, iv, [data], name))


def _md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()  # zero-padded, as Collect


def signature_source(envelope: Envelope, plaintexts: Mapping[str, bytes]) -> bytes:
    """What Collect signs: identity lines, then "name::md5" of every decrypted file."""
    lines = [envelope.form_id]
    if envelope.version is not None:
        lines.append(envelope.version)
    lines += [envelope.encrypted_key_text, envelope.instance_id]
    for name in envelope.files:
        plain_name = name.removesuffix(ENC_SUFFIX)
        lines.append(f"{plain_name}::{_md5_hex(plaintexts[plain_name])}")
    return "".join(line + "\n" for line in lines).encode()


def _verify_signature(
    envelope: Envelope, plaintexts: Mapping[str, bytes], private_key: rsa.RSAPrivateKey
) -> None:
    if envelope.signature is None:
        raise EncryptionError(
            "The encrypted submission has no base64EncryptedElementSignature, so it cannot be "
            "checked for tampering."
        )
    signed = _rsa_decrypt(private_key, envelope.signature)
    expected = hashlib.md5(signature_source(envelope, plaintexts), usedforsecurity=False).digest()
    if signed is None or not hmac.compare_digest(signed, expected):
        raise EncryptionError(
            "The encrypted submission's signature does not match its contents: the envelope "
            "or one of its files was altered or swapped after it left the device."
        )


def _check_identity(envelope: Envelope, xml: bytes) -> None:
    """The decrypted XML must be the instance the envelope says it is (as Briefcase checks)."""
    try:
        root = parse_xml_safely(xml, what="decrypted submission")
    except FormRejected as error:
        raise EncryptionError(str(error)) from None
    ids = [i for m in _children(root, "meta") for i in _children(m, "instanceID")]
    found = (root.get("id"), instance_version(root), _text(ids[0]) if ids else "")
    wanted = (envelope.form_id, envelope.version or "", envelope.instance_id)
    if found != wanted:
        raise EncryptionError(
            "The decrypted submission is not the one its envelope describes "
            f"(form, version, instanceID {found!r}, envelope says {wanted!r})."
        )


def _require(files: Mapping[str, bytes], names: list[str]) -> None:
    missing = [name for name in names if name not in files]
    if missing:
        raise EncryptionError(
            "The encrypted submission is incomplete; still missing: " + ", ".join(missing) + "."
        )


def decrypt_submission_xml(
    envelope: Envelope, encrypted_xml: bytes, private_key: rsa.RSAPrivateKey
) -> bytes:
    """Only the XML, while media may still be on their way (no signature check possible)."""
    key = unwrap_submission_key(private_key, envelope.encrypted_key)
    iv = submission_ivs(envelope.instance_id, key, len(envelope.files))[-1]
    xml = decrypt_file(key, iv, encrypted_xml, envelope.encrypted_xml_file)
    _check_identity(envelope, xml)
    return xml


def decrypt_submission(
    envelope: Envelope,
    files: Mapping[str, bytes],
    private_key: rsa.RSAPrivateKey,
    *,
    verify_signature: bool = True,
) -> DecryptedSubmission:
    """Every file of a complete submission, checked against Collect's signature."""
    _require(files, envelope.files)
    key = unwrap_submission_key(private_key, envelope.encrypted_key)
    ivs = submission_ivs(envelope.instance_id, key, len(envelope.files))
    plaintexts = {
        name.removesuffix(ENC_SUFFIX): decrypt_file(key, iv, files[name], name)
        for name, iv in zip(envelope.files, ivs, strict=True)
    }
    if verify_signature:
        _verify_signature(envelope, plaintexts, private_key)
    xml = plaintexts.pop(envelope.encrypted_xml_file.removesuffix(ENC_SUFFIX))
    _check_identity(envelope, xml)
    return DecryptedSubmission(xml=xml, attachments=plaintexts)


# ---- keys --------------------------------------------------------------------------------


def public_key_base64_for_xform(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> str:
    """DER SubjectPublicKeyInfo in base64: the form's <submission base64RsaPublicKey=...>."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def public_key_from_xform(base64_key: str) -> rsa.RSAPublicKey:
    """The RSA key a form's base64RsaPublicKey names, as Collect reads it (X.509 SPKI)."""
    try:
        key = serialization.load_der_public_key(_b64(base64_key, "base64RsaPublicKey"))
    except (ValueError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, rsa.RSAPublicKey):
        raise EncryptionError("The form's base64RsaPublicKey is not an RSA public key.")
    return key


def load_private_key_pem(pem: bytes, password: str | bytes | None = None) -> rsa.RSAPrivateKey:
    """A plain (or password-protected) PEM RSA private key, as an admin would upload one."""
    secret = password.encode() if isinstance(password, str) else password
    try:
        key = serialization.load_pem_private_key(pem, password=secret)
    except TypeError:  # encrypted without a password, or a password for a plain key
        raise WrongPassphrase(
            "This private key file is passphrase-protected."
            if secret is None
            else "This private key file is not passphrase-protected; leave the passphrase empty."
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        if secret is not None and b"ENCRYPTED" in pem:
            raise WrongPassphrase("The passphrase does not open this private key file.") from None
        raise EncryptionError("This is not a PEM private key file.") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise EncryptionError("ODK form encryption needs an RSA private key.")
    return key


@dataclass(frozen=True)
class ManagedKey:
    """A key pair whose private half is stored encrypted under a project passphrase."""

    #: SubjectPublicKeyInfo PEM; `public_key_base64_for_xform` turns it into the form's attribute.
    public_pem: str
    #: AES-256-CBC (PKCS#7 padded) of the PKCS#8 PEM private key, as Central stores `privkey`.
    encrypted_private_key: bytes
    salt: bytes
    iv: bytes
    #: PBKDF2-HMAC-SHA256 iterations; Central's own keys use CENTRAL_PBKDF2_ITERATIONS.
    iterations: int
    hint: str | None = None


def _passphrase_key(passphrase: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", passphrase.encode(), salt, iterations, AES_KEY_BYTES)


def generate_managed_key(
    passphrase: str, hint: str | None = None, *, iterations: int = PBKDF2_ITERATIONS
) -> ManagedKey:
    """A fresh key pair, locked the way Central locks its managed keys."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    salt, iv = os.urandom(SALT_BYTES), os.urandom(BLOCK_BYTES)
    padder = padding.PKCS7(BLOCK_BYTES * 8).padder()
    padded = padder.update(private_pem) + padder.finalize()
    encryptor = Cipher(
        algorithms.AES(_passphrase_key(passphrase, salt, iterations)), modes.CBC(iv)
    ).encryptor()
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ManagedKey(
        public_pem=public_pem.decode("ascii"),
        encrypted_private_key=encryptor.update(padded) + encryptor.finalize(),
        salt=salt,
        iv=iv,
        iterations=iterations,
        hint=hint,
    )


def unlock_private_key(managed: ManagedKey, passphrase: str) -> rsa.RSAPrivateKey:
    """The private key, or WrongPassphrase (a bad pad or unreadable PEM is a wrong passphrase)."""
    decryptor = Cipher(
        algorithms.AES(_passphrase_key(passphrase, managed.salt, managed.iterations)),
        modes.CBC(managed.iv),
    ).decryptor()
    unpadder = padding.PKCS7(BLOCK_BYTES * 8).unpadder()
    try:
        padded = decryptor.update(managed.encrypted_private_key) + decryptor.finalize()
        pem = unpadder.update(padded) + unpadder.finalize()
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise WrongPassphrase("That passphrase does not unlock this project's key.") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise WrongPassphrase("That passphrase does not unlock this project's key.")
    return key
