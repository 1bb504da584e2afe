"""ODK form encryption: Central's own test vectors, Collect-style round trips, and keys."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from server.submissions.encryption import (
    CENTRAL_PBKDF2_ITERATIONS,
    OAEP_SHA256,
    PBKDF2_ITERATIONS,
    EncryptionError,
    ManagedKey,
    WrongPassphrase,
    decrypt_file,
    decrypt_submission,
    decrypt_submission_xml,
    generate_managed_key,
    iter_decrypt_file,
    load_private_key_pem,
    parse_envelope,
    public_key_base64_for_xform,
    public_key_from_xform,
    submission_ivs,
    unlock_private_key,
    unwrap_submission_key,
)
from tests.odk_encryption import encrypt_submission_as_collect

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
CENTRAL = REFERENCE / "odk" / "central"
needs_reference = pytest.mark.skipif(
    not CENTRAL.is_dir(), reason=f"ODK Central reference data not found at {CENTRAL}"
)

# ---- vectors from ODK Central ---------------------------------------------------------------
# Copied from getodk/central-backend test/unit/util/crypto.js (Apache License 2.0,
# https://www.apache.org/licenses/LICENSE-2.0). Made with Central's test key pair, which is
# ../shared/reference/odk/central/priv.pem; the submission bytes were made by Collect v1.22.4.

#: "key retrieval": a base64EncryptedKey from Collect and the AES key inside it.
CENTRAL_WRAPPED_KEY = (
    "heF9tzGvB1jjjBM5AAADnTgrFwmtyjESyCNk86oiX/r+WCohyEX3f4jOswK4/IBLx9VNW4k1wbo0t9PMp4Ie/PAucy"
    "BwyqKpx6coGkk8nCeznzisLe07fr9a6MEFOuBqKWun28M/cDUasoyg8//ytMVatSMGjv+Nkj8L7QtlMH6iDJoWZQfw"
    "vxgDeCrBn2+jr+qwdlQzxwyi5taV+zB9s+FDgJ14n8AyY3t4x0n+qkOqEvMVKIFc4ofRXBaG5N/21Uy+qA91Ap26sV"
    "Do7g1vmG+gND/f+Mx1gBQcmM0EKHowUT5cIdrG6N/XTHVpCWkH6qxjhuWyayCGBT+Frxf+Sg=="
)
CENTRAL_AES_KEY = "3TJoHf74zHbDwG3Ta+bcvfUr50C6yF/astfu+CdSnQU="
#: "iv generation": file index -> IV for this instanceID and CENTRAL_AES_KEY.
CENTRAL_IV_INSTANCE = "uuid:22525f8e-4f2d-41ed-94da-4c46a2478448"
CENTRAL_IVS = {
    0: "39bbb0890f3222269da68b172146477a",
    1: "39bcb0890f3222269da68b172146477a",
    8: "39bcb18a103323279ea68b172146477a",
    15: "39bcb18a103323279ea78c182247487b",
    23: "3abdb28b113424289ea78c182247487b",
    31: "3abdb28b113424289fa88d192348497c",
}
#: "end-to-end": submission.xml.enc of submissions/encrypted.two.xml, and its plaintext.
CENTRAL_TWO_XML_ENC = (
    "kMhJdk0mZOqvlxndUO3v4+UPvfYoc+bbkPmF3QmhoP7lP/QjHbzqw/IfZxQ54D328eCc4V6jtbrjeAXV+m1cWsCGGL"
    "W5KwTAxBjPBXzsZrUeY0RISVJ1g9BJoXfSRAjYMrFYOM907BFUIYYxMqpVWGy1lo8ljqY+Sgq1VphkQk/TQGgOVYFA"
    "LHDLOYnLKuLHvwBLQQwK3lje8CwNlf/b2rY9qfGC4P1emoiP+YzkLp8eH6x/HfMvRIFoZEaom1i5s3SU4WVwe2Tno4"
    "jKD69ojMlQN6VKB7DK4xaRSs2C7zfDm63n1WCyyOAj8mASIFhb3sc3hD56HTJFUV/TH3UVlzP7oPm/Mm7nEcU3+HdS"
    "Swm3I1qFYhsXfVRym41IlbC4Twf660/kUZrugA7Zqd5K9Un3lOVTzYowaF+m5OIOO56wff3zPBxeOVjANDKR7V6/"
)
CENTRAL_TWO_XML = (
    b'<?xml version=\'1.0\' ?><data id="encrypted" version="working3" '
    b'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:h="http://www.w3.org/1999/xhtml" '
    b'xmlns:jr="http://openrosa.org/javarosa"><meta><instanceID>'
    b"uuid:99b303d9-6494-477b-a30d-d8aae8867335</instanceID></meta><name>bob</name>"
    b"<age>30</age><file>1561432532482.jpg</file></data>"
)
#: "ursa backwards compatibility": a managed key Central v0.5 stored (passphrase "topsecret"),
#: with a backup key wrapped to it and a line encrypted under that backup key.
CENTRAL_MANAGED = {
    "privkey": (
        "dgl5f1DJhgl+izY0+Lt/ePQngq3ZEClEwDr7HJfcD4RTUAUOhN8WyNgryRrlVkhY/j6uK4EwRPMTRUXVVxyCHn"
        "KqwbnrAZoR7P5QMFbINmWEecM6XlJIkDpa2XhRhx2t7zGsgwXeFoMM8+9ALoCKZNLDKLADkcIALrAA3ASlG5eDf"
        "1YsvSoK44ZuoaJzHsAoVXcTtsIa6qwXWmSJleLtfYKaapSeeNihViJnxRyAiJ/fz4WPcsIYIFoYk5QhdbmaICiB"
        "jFrLtW2wZF0rUYes/n3Wst+wk0n4xrIbjvJEf8ZI8G6ijB1cKPDnZDDxMzusW9yloq50lUvgMU+ggG/ijqNL+/T"
        "McIWDOge6766tPCwBxwcUS8hemPEJsOMk86oPvwDWt0TcT/B+yHtiKxDh8NCRBh1eEp76RN2dPzpbZmzcgtBdat"
        "GFJDZTjd9KJaKHwXBJ1gkZg6pC6j1AK1894dzcZvmqRPJRPj9Jhnh4l0Ly5ftrWk9ZTyLWQaRTiCfLMO460lGNr"
        "rZ/4fpC0Uc48x/0RY5OyixpWmsmyOeW3sHC5iYovXfMgWl0/t6o+uH7ZsbxnDd+yg3epdr2PZH2MR0YDq6tqizx"
        "2wSGICDw8925+UhmzZxz6f9WYDbycoN7i1omX7c2HgbNw65mUs1SM7sbbF3cfAQfWxXVDHucQ0/wYZoOik8iDD/"
        "eImzL86YuEaPnhqUbbAMcsdR0qRsUFYy5lb8GJfS8A2BBboJZn6BSGJQL8vjLKmSw+JnHPyCxWl4R3n1KBs+OSG"
        "qlMU/jq9otxaa1mcUw7mWLQbJa7d+T7vPzNdv8ZIWNrc9ifP68naxQYlAB22Ufeu2+yDepqtzzvz48+6SpHtis/"
        "sPYneniKWOE9b+KBC7xRfCR3eaBCq4lKl/fKvf7OqltV0O7OmNcn4LgfN6Vahk/WWuQJbfzxg1UB+XuTT7gCnTO"
        "NQvOIwKV1j8SY4rPuNWK8As+NM3I+kpWM4ckfs0lNBokI8SKAM+rLiQ5DAYmD5MyhGmhAflhAtGPilfReX3dnf5"
        "vpkNd7pOAimJlQUIULJ7wAKXypyXf7l5w7KNd41UfG+/zaoA0nGwhju5I2oHz1sxnL+TvZ7RiI4TfTINU5xLsRe"
        "RfVXEbAMH360tQnR14/S6/UzyVS/XzuqgLuZSAjlec1dptv5tKNvN8BFm9lCsZshhtT48Q/++7q2hOgvHT4Kcbp"
        "VgJLW9EzWukY8LahyHXzuwl6Q7AQo2l3w0rNphZzPOZTM4HgZCgncZXcrRXMN916RxcX60FGWkDL3yo/NGwT5LJ"
        "4GK65Zc+qLtD/Cc/fAOFJWv2/dpOXPG73c/rs+1CsMiMP+q+RNWg9migADyyhj6r4DZ9sQE7qtZCjviuP+zwSC8"
        "TNmVFsTVe/n7hP4FIKCGYJjQ2rHFxvp+khssaV+XmVWAgzVqv9Ob3Ks4l52vE9qi8U63FGrWOGsU3ZK4d+zFQrH"
        "INCBGBX+8Hf6Vt1AWg1Y89J5d3WVpdUpGq4NmHa73LFPiic2+XH40iGAgm2wJvTA88I3D6fV17uMcDpYR7Jy8xw"
        "cgqp2dwleoHGhRV+2WPJ7dqD5JUKLD+9PdPP+vMI+1ppQZ2d+17oYwNs0tVi5k/Sg21gdfmkqbCzQI9uPtkkVXJ"
        "VLxmrS5nandFAczOoKBCX2LnEKNg8M2euKRQVWDDsx/zTvc5xYVJRuIikHegGz3EQOXgFFG7k1kE/EXChvn9E8o"
        "g4BO0GgojrAV/o2ypkhI0++a4bqpPfdsYi3UVmgBGOHF9RjCEAa3Cu2xNsCfNCFEZ0FHrHeUxq9LA25/nO6YFNE"
        "WIk22FSb297r5KXGCeZGCNozMzK1UQXn1rGEqq/3Se8RT4OMSC88SkDWUWbJ+QyXafEYOE4Jiy9lUu8ttWoo8i6"
        "Xb/NwP+pLSoLlCUhhOPZXlaE1xnjG8WyTIxKvHoJktNUoSJ1HDqL3x8kVsUCSx+mOEbHtQjcN1SCJ3c/cEDQZl8"
        "2EzF+H+KAlsU427lplENktKtj/0k0YiTjYbZeezqOTQ93to0+200UW5kkmVg10+krMJeVK30cQXI+HvIrhPhQx/"
        "2VmWkPVQ6ZXUyUlZaEdWCzu7D8VXtr2AaNdcmbhMbva+NLbSbdS6yKbKA+Ua2prV3lMmTtvOTjSxS28rWpL/TKG"
        "vcveVbBhgmRpZpneauc+JQCEDghkHDejuhz0JrXDDvA11FV1RmDHT/4eivsRCE5G7o"
    ),
    "salt": "F0TLadQjPnPGOfUQ2kZM+g==",
    "iv": "hXs4HQKvDyP+kOlf9Y1ByA==",
    "local_key": (
        "bcFeKDF3Sg8W91Uf5uxaIlM2uK0cUN9tBSGoASbC4LeIPqx65+6zmjbgUnIyiLzIjrx4CAaf9Y9LG7TAu6wKPq"
        "fbH6ZAkJTFSfjLNovbKhpOQcmO5VZGGay6yvXrX1TFW6C6RLITy74erxfUAStdtpP4nraCYqQYqn5zD4/1Omgwe"
        "Jt5vzGXW2ch7lrROEQhXB9lK+bjEeWx8TFW/+6ha/oRLnl6a2RBRL6mhwy3PoByNTKndB2MP4TygCJ/Ini4ivk7"
        "4iSqVnoeuNJR/xUcU+kaIpZEIjxpAS2VECJU9fZvS5Gt84e5wl/t7bUKu+dlh/cUgHfk6+6bwzqGQYOe5A=="
    ),
    "local_iv": "LO2c/xLVb32/2VZTHlsSzw==",
    "ciphertext": (
        "5+HKE91MbYyTbkP9vktH749GQ+j4y6tj3ArEl3Z9YRmMl5T2oGpvvAA5rLQZRfroyNuKbvjw/6qnYU7LgbgHDA=="
    ),
}


def b64(text: str) -> bytes:
    return base64.b64decode(text)


@pytest.fixture(scope="module")
def central_key() -> rsa.RSAPrivateKey:
    if not CENTRAL.is_dir():
        pytest.skip(f"ODK Central reference data not found at {CENTRAL}")
    return load_private_key_pem((CENTRAL / "priv.pem").read_bytes())


def central_envelope(name: str):
    return parse_envelope((CENTRAL / "submissions" / f"encrypted.{name}.xml").read_bytes())


# ---- Central's real data ----------------------------------------------------------------


@needs_reference
def test_central_key_pair_is_the_one_in_the_encrypted_form(central_key):
    form = (CENTRAL / "forms" / "encrypted.xml").read_text()
    in_form = re.search(r'base64RsaPublicKey="([^"]+)"', form).group(1)
    assert public_key_base64_for_xform(central_key) == in_form
    assert public_key_base64_for_xform(central_key.public_key()) == in_form
    pub = serialization.load_pem_public_key((CENTRAL / "pub.pem").read_bytes())
    assert public_key_from_xform(in_form).public_numbers() == pub.public_numbers()


@needs_reference
def test_central_envelopes_parse():
    one, two = central_envelope("one"), central_envelope("two")
    assert (one.form_id, one.version, one.instance_id) == (
        "encrypted",
        "working3",
        "uuid:dcf4a151-5088-453f-99e6-369d67828f7a",
    )
    assert one.media_files == ["1561432508817.jpg.enc"]
    assert two.files == ["1561432532482.jpg.enc", "submission.xml.enc"]
    assert len(two.encrypted_key) == len(two.signature) == 256


def test_central_unwraps_collects_key(central_key):
    assert unwrap_submission_key(central_key, b64(CENTRAL_WRAPPED_KEY)) == b64(CENTRAL_AES_KEY)


def test_central_iv_vectors():
    ivs = submission_ivs(CENTRAL_IV_INSTANCE, b64(CENTRAL_AES_KEY), 32)
    assert {i: ivs[i].hex() for i in CENTRAL_IVS} == CENTRAL_IVS


def test_central_sample_two_decrypts_to_collects_xml(central_key):
    envelope = central_envelope("two")
    assert decrypt_submission_xml(envelope, b64(CENTRAL_TWO_XML_ENC), central_key) == (
        CENTRAL_TWO_XML
    )
    # The IV is the second one: the photo, listed first in the envelope, took the first.
    key = unwrap_submission_key(central_key, envelope.encrypted_key)
    first_iv = submission_ivs(envelope.instance_id, key, 1)[0]
    wrong_iv = decrypt_file(key, first_iv, b64(CENTRAL_TWO_XML_ENC), "submission.xml.enc")
    assert (wrong_iv[:16] != CENTRAL_TWO_XML[:16], wrong_iv[16:]) == (True, CENTRAL_TWO_XML[16:])


def test_central_signatures_open_with_the_same_oaep(central_key):
    """The photos are not published, but each signature must unwrap to a 16-byte md5."""
    for name in ("one", "two"):
        assert len(central_key.decrypt(central_envelope(name).signature, OAEP_SHA256)) == 16


def test_central_sample_without_its_photo_names_the_missing_file(central_key):
    files = {"submission.xml.enc": b64(CENTRAL_TWO_XML_ENC)}
    with pytest.raises(EncryptionError, match=r"missing: 1561432532482\.jpg\.enc\.$"):
        decrypt_submission(central_envelope("two"), files, central_key)


@pytest.mark.parametrize("cut", [16, 6])
def test_central_sample_cut_short_is_refused(central_key, cut):
    with pytest.raises(EncryptionError, match="submission.xml.enc"):
        decrypt_submission_xml(
            central_envelope("two"), b64(CENTRAL_TWO_XML_ENC)[:-cut], central_key
        )


def test_a_managed_key_stored_by_central_unlocks():
    managed = ManagedKey(
        public_pem="",  # Central's vector carries no public key; unlocking does not need one
        encrypted_private_key=b64(CENTRAL_MANAGED["privkey"]),
        salt=b64(CENTRAL_MANAGED["salt"]),
        iv=b64(CENTRAL_MANAGED["iv"]),
        iterations=CENTRAL_PBKDF2_ITERATIONS,
    )
    private_key = unlock_private_key(managed, "topsecret")
    # Central's backups wrap with ursa's default OAEP (SHA-1), then AES-256-CBC.
    sha1 = hashes.SHA1()  # noqa: S303 - only to read Central's existing backup format
    oaep_sha1 = OAEP(mgf=MGF1(sha1), algorithm=sha1, label=None)
    local_key = private_key.decrypt(b64(CENTRAL_MANAGED["local_key"]), oaep_sha1)
    decryptor = Cipher(
        algorithms.AES(local_key), modes.CBC(b64(CENTRAL_MANAGED["local_iv"]))
    ).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    padded = decryptor.update(b64(CENTRAL_MANAGED["ciphertext"])) + decryptor.finalize()
    text = unpadder.update(padded) + unpadder.finalize()
    assert text == b"a way a lone a last a loved a long the riverrun,"
    with pytest.raises(WrongPassphrase):
        unlock_private_key(managed, "topsecreT")


# ---- round trips with a fresh key ---------------------------------------------------------

INSTANCE = "uuid:6f1c7a52-0d7e-4c39-9a35-1b2e3f4a5b6c"


def submission(version: str | None = "2024-05", instance: str = INSTANCE) -> bytes:
    version_attr = "" if version is None else f' version="{version}"'
    return (
        f'<data id="case_intake"{version_attr} xmlns:orx="http://openrosa.org/xforms">'
        f"<name>Amara Nwosu — café</name><photo>a.jpg</photo>"
        f"<orx:meta><orx:instanceID>{instance}</orx:instanceID></orx:meta></data>"
    ).encode()


MEDIA = {
    "a.jpg": os.urandom(5000),
    "voice note.m4a": os.urandom(16 * 40),  # whole blocks: gains a full block of padding
    "fîlé 😂 صادق.png": os.urandom(33),
    "empty.txt": b"",
}


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def upload(key):
    return encrypt_submission_as_collect(submission(), MEDIA, key.public_key())


def test_round_trip_gives_back_the_xml_and_every_attachment(key, upload):
    envelope = parse_envelope(upload.envelope)
    assert envelope.media_files == [name + ".enc" for name in MEDIA]
    result = decrypt_submission(envelope, upload.files, key)
    assert result.xml == submission()
    assert result.attachments == MEDIA
    assert list(result.attachments) == list(MEDIA)


def test_round_trip_without_a_form_version(key):
    upload = encrypt_submission_as_collect(
        submission(version=None), {"a.jpg": b"x"}, key.public_key()
    )
    envelope = parse_envelope(upload.envelope)
    assert envelope.version is None
    assert decrypt_submission(envelope, upload.files, key).xml == submission(version=None)


def test_media_order_decides_the_ivs_and_the_signature_notices(key, upload):
    envelope = parse_envelope(upload.envelope)
    first, second, *rest = envelope.media_files  # a.jpg and the voice note: many blocks each
    swapped = dataclasses.replace(envelope, media_files=[second, first, *rest])
    with pytest.raises(EncryptionError, match="signature does not match"):
        decrypt_submission(swapped, upload.files, key)
    # CFB only garbles the first block under a wrong IV, so only the signature catches it.
    unchecked = decrypt_submission(swapped, upload.files, key, verify_signature=False)
    assert unchecked.attachments["a.jpg"][16:] == MEDIA["a.jpg"][16:]
    assert unchecked.attachments["a.jpg"][:16] != MEDIA["a.jpg"][:16]
    # A one-block file is all padding, so there the wrong IV already breaks the padding.
    last_two = dataclasses.replace(envelope, media_files=[first, second, *rest[::-1]])
    with pytest.raises(EncryptionError, match="'empty.txt.enc' does not decrypt"):
        decrypt_submission(last_two, upload.files, key)


def test_streaming_decryption_matches(key, upload):
    envelope = parse_envelope(upload.envelope)
    aes_key = unwrap_submission_key(key, envelope.encrypted_key)
    iv = submission_ivs(envelope.instance_id, aes_key, 1)[0]
    data = upload.files["a.jpg.enc"]
    chunks = [data[i : i + 7] for i in range(0, len(data), 7)]
    assert b"".join(iter_decrypt_file(aes_key, iv, chunks, "a.jpg.enc")) == MEDIA["a.jpg"]


def test_the_xml_alone_decrypts_before_the_media_arrive(key, upload):
    envelope = parse_envelope(upload.envelope)
    xml = decrypt_submission_xml(envelope, upload.files["submission.xml.enc"], key)
    assert xml == submission()


def test_a_different_private_key_is_refused(upload):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(EncryptionError, match="cannot be opened with this private key"):
        decrypt_submission(parse_envelope(upload.envelope), upload.files, other)


@pytest.mark.parametrize("name", ["a.jpg.enc", "submission.xml.enc"])
def test_a_changed_byte_is_refused(key, upload, name):
    files = dict(upload.files)
    data = bytearray(files[name])
    data[len(data) // 2] ^= 0x01
    files[name] = bytes(data)
    with pytest.raises(EncryptionError, match="signature does not match"):
        decrypt_submission(parse_envelope(upload.envelope), files, key)


def test_a_file_from_another_submission_is_refused(key, upload):
    other = encrypt_submission_as_collect(submission(), MEDIA, key.public_key())
    files = {**upload.files, "a.jpg.enc": other.files["a.jpg.enc"]}
    with pytest.raises(EncryptionError) as caught:
        decrypt_submission(parse_envelope(upload.envelope), files, key)
    assert "a.jpg.enc" in caught.value.message or "signature" in caught.value.message


def test_missing_files_are_named(key, upload):
    files = {k: v for k, v in upload.files.items() if k not in ("voice note.m4a.enc",)}
    with pytest.raises(EncryptionError, match="missing: voice note.m4a.enc"):
        decrypt_submission(parse_envelope(upload.envelope), files, key)


def test_an_unsigned_envelope_needs_verification_turned_off(key, upload):
    envelope = dataclasses.replace(parse_envelope(upload.envelope), signature=None)
    with pytest.raises(EncryptionError, match="no base64EncryptedElementSignature"):
        decrypt_submission(envelope, upload.files, key)
    assert decrypt_submission(envelope, upload.files, key, verify_signature=False).attachments


def test_an_envelope_relabelled_to_another_form_is_refused(key, upload):
    envelope = dataclasses.replace(parse_envelope(upload.envelope), form_id="other_form")
    with pytest.raises(EncryptionError, match="signature does not match"):
        decrypt_submission(envelope, upload.files, key)
    with pytest.raises(EncryptionError, match="not the one its envelope describes"):
        decrypt_submission(envelope, upload.files, key, verify_signature=False)


# ---- malformed envelopes -----------------------------------------------------------------


def envelope_xml(upload, old: str, new: str) -> bytes:
    text = upload.envelope.decode()
    assert re.search(old, text), old
    return re.sub(old, new, text, count=1).encode()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (r"<base64EncryptedKey>.*?</base64EncryptedKey>", "", "exactly one <base64EncryptedKey>"),
        (r"<base64EncryptedKey>.*?<", "<base64EncryptedKey>not*base64!<", "not valid base64"),
        (r"<base64EncryptedKey>.*?<", "<base64EncryptedKey><", "not valid base64|is empty"),
        (r"<orx:instanceID>.*?</orx:instanceID>", "", "no single meta/instanceID"),
        (r' id="case_intake"', "", "which form"),
        (r"<encryptedXmlFile>.*?</encryptedXmlFile>", "", "one <encryptedXmlFile>"),
        (r"submission\.xml\.enc", "../submission.xml.enc", "plain file name ending in .enc"),
        (r"a\.jpg\.enc", "a.jpg", "plain file name ending in .enc"),
        (r"a\.jpg\.enc", "submission.xml.enc", "same file twice"),
        (r"Signature>[^<]+<", "Signature>%%%<", "signature is not valid base64"),
        (r"^<data", "<!DOCTYPE data [<!ENTITY x 'y'>]><data", "DTD or entities"),
        (r"</data>$", "", "not well-formed"),
    ],
)
def test_malformed_envelopes_say_what_is_wrong(upload, old, new, message):
    with pytest.raises(EncryptionError, match=message):
        parse_envelope(envelope_xml(upload, old, new))


# ---- keys --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def managed() -> ManagedKey:
    return generate_managed_key("correct horse battery staple", hint="the usual")


def test_managed_key_unlocks_with_its_passphrase(managed):
    assert managed.iterations == PBKDF2_ITERATIONS
    assert (len(managed.salt), len(managed.iv), managed.hint) == (16, 16, "the usual")
    assert managed.public_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert b"PRIVATE KEY" not in managed.encrypted_private_key
    private_key = unlock_private_key(managed, "correct horse battery staple")
    assert private_key.key_size == 2048
    public = serialization.load_pem_public_key(managed.public_pem.encode())
    assert private_key.public_key().public_numbers() == public.public_numbers()


@pytest.mark.parametrize(
    "wrong", ["", "correct horse battery stapl", "Correct horse battery staple"]
)
def test_managed_key_refuses_a_wrong_passphrase(managed, wrong):
    with pytest.raises(WrongPassphrase, match="does not unlock"):
        unlock_private_key(managed, wrong)


def test_two_managed_keys_never_share_salt_or_iv(managed):
    other = generate_managed_key("correct horse battery staple", iterations=1_000)
    assert other.salt != managed.salt and other.iv != managed.iv
    assert other.iterations == 1_000
    assert unlock_private_key(other, "correct horse battery staple")


def test_form_key_from_a_managed_key_round_trips_a_submission(managed):
    """The whole path: key in the form, Collect encrypts with it, passphrase opens it."""
    in_form = public_key_base64_for_xform(
        serialization.load_pem_public_key(managed.public_pem.encode())
    )
    public_key = public_key_from_xform(in_form)
    assert isinstance(public_key, rsa.RSAPublicKey)
    upload = encrypt_submission_as_collect(submission(), {"a.jpg": b"photo"}, public_key)
    private_key = unlock_private_key(managed, "correct horse battery staple")
    result = decrypt_submission(parse_envelope(upload.envelope), upload.files, private_key)
    assert (result.xml, result.attachments) == (submission(), {"a.jpg": b"photo"})


def test_form_key_that_is_not_an_rsa_key_is_refused():
    with pytest.raises(EncryptionError, match="not valid base64"):
        public_key_from_xform("not a key!")
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = ec_public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(EncryptionError, match="not an RSA public key"):
        public_key_from_xform(base64.b64encode(der).decode())


def test_private_key_pem_files(key):
    protected = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    loaded = load_private_key_pem(protected, "s3cret")
    assert loaded.private_numbers() == key.private_numbers()
    with pytest.raises(WrongPassphrase):
        load_private_key_pem(protected, "wrong")
    with pytest.raises(WrongPassphrase, match="passphrase-protected"):
        load_private_key_pem(protected)
    with pytest.raises(EncryptionError, match="not a PEM private key"):
        load_private_key_pem(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(EncryptionError, match="needs an RSA private key"):
        load_private_key_pem(ec_pem)
