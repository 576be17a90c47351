"""Legacy password hashes imported from older systems (idp.crypto.legacy_hashes).

Known-answer vectors were produced outside Python, on the exact bytes named in each row:
digests with ``printf ... | openssl dgst -md5|-sha1|-sha256|-sm3`` (OpenSSL 3.0),
PBKDF2 with ``openssl kdf -kdfopt digest:... PBKDF2`` (the pbkdf2-sha1 rows are also
RFC 6070's), ``$2y$`` bcrypt with ``htpasswd -bnBC 10`` (apache2-utils), and ``$2a$``
bcrypt from the published OpenBSD / jBCrypt test vectors.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import bcrypt
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from idp.crypto.legacy_hashes import (
    FORMATS,
    PREFIX,
    LegacyHashError,
    encode_legacy,
    is_legacy,
    verify_legacy,
)

CN = "中华人民共和国密码2024"
HEX_SALT = "00ff10a5"  # raw bytes 00 ff 10 a5: not valid UTF-8, so only usable as hex

# (format, salt, salt_encoding, password, expected digest hex) — openssl dgst output.
DIGEST_KATS = [
    ("md5", None, None, "password", "5f4dcc3b5aa765d61d8327deb882cf99"),
    ("md5", None, None, CN, "1a6fd56c70674045045ab4cc39ed7b5d"),
    ("md5-salt-before", "NaCl", "utf8", CN, "b9f7d0edbca371788c168fd936d6cbf7"),
    ("md5-salt-after", "NaCl", "utf8", CN, "ff37e58b500c05053230fed0cfcfd7a3"),
    ("md5-salt-before", HEX_SALT, "hex", "password", "7ec78c4d6b7b8bdb106275e611051cc9"),
    ("md5-salt-after", HEX_SALT, "hex", "password", "ba77921d4a0ae371f66357c21145ce9e"),
    ("md5-salt-after", "盐", "utf8", "password", "a8dc3827fb4821a101eefca846d2ddc1"),
    ("sha1", None, None, "password", "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8"),
    ("sha1", None, None, CN, "92a943a18662b496530df70ef6fa56e6cfa3134e"),
    ("sha1-salt-before", "NaCl", "utf8", CN, "7ae5b5de29a78f9eb2ee78db9185ae756c3ec347"),
    ("sha1-salt-after", "NaCl", "utf8", CN, "e40976ac3d6afaa273a2486afcca1e3d81159b6f"),
    ("sha1-salt-before", HEX_SALT, "hex", "password", "943f8828093ff17b55842bffa50f1bf85a956ac4"),
    ("sha1-salt-after", HEX_SALT, "hex", "password", "2961db08942076a600b7ead929fe65f6d3c03ef0"),
    ("sha1-salt-after", "盐", "utf8", "password", "e0c528de1c807b628b927ffefd5d0903bc84e88a"),
    (
        "sha256",
        None,
        None,
        "password",
        "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
    ),
    ("sha256", None, None, CN, "d837cd941c2b3df9440583ba8a5ac5f39bf95506adc84781bf44c12733722668"),
    (
        "sha256-salt-before",
        "NaCl",
        "utf8",
        CN,
        "dfc0f26b34367a0990ad1561a9555203dbd654868f452fbfeb1d07e63ce34103",
    ),
    (
        "sha256-salt-after",
        "NaCl",
        "utf8",
        CN,
        "789aa07b1a6e503cbefafd9989cba4fe8f3d74f1db1786004b45b5d270f6d69a",
    ),
    (
        "sha256-salt-before",
        HEX_SALT,
        "hex",
        "password",
        "b89f974098cfd24a088e1d0b91ce0afdc0d3c6e608d99be5dd2c728d3a1e7fd3",
    ),
    (
        "sha256-salt-after",
        HEX_SALT,
        "hex",
        "password",
        "b59865d8c4d6ee27684dd16c1acc882a49d9942848939e8bb11cab22b856a6c7",
    ),
    (
        "sha256-salt-after",
        "盐",
        "utf8",
        "password",
        "ac6cdd90f5d74b269dc39d419802e8f5f84111c1f3ae6816619671fa8b053ca7",
    ),
    (
        "sm3",
        None,
        None,
        "password",
        "08594e140bcc046e345325435218f67a85c38c63de6443b197b544d70ee62f26",
    ),
    ("sm3", None, None, CN, "4498e129b5441fec9c288a9b83f07e32f7466ad4acbbb264cd96e3268521e387"),
    (
        "sm3-salt-before",
        "NaCl",
        "utf8",
        CN,
        "f29c83383db0e722fab58d11f31a8146cd08979450a09143b56245df71d3c8af",
    ),
    (
        "sm3-salt-after",
        "NaCl",
        "utf8",
        CN,
        "f720e1ace56f8f632e888b088e1554cf48026e52428557f5310da74021a03eae",
    ),
    (
        "sm3-salt-before",
        HEX_SALT,
        "hex",
        "password",
        "16fa1c1c947ff7a09ad4662a28326d05ae5acde82454bf32f1475d09d78efdc4",
    ),
    (
        "sm3-salt-after",
        HEX_SALT,
        "hex",
        "password",
        "342c4d2e6128dbe04f02c9430cac569e9dd41ca776649b9afcd0e31ee191190d",
    ),
    (
        "sm3-salt-after",
        "盐",
        "utf8",
        "password",
        "a848e11552acce283085171222e39475c09f8db59360ad5cd4e2f26cd2f1517a",
    ),
]

# (format, salt, salt_encoding, iterations, password, derived key hex) — openssl kdf.
PBKDF2_KATS = [
    ("pbkdf2-sha1", "salt", "utf8", 1, "password", "0c60c80f961f0e71f3a9b524af6012062fe037a6"),
    ("pbkdf2-sha1", "salt", "utf8", 2, "password", "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"),
    ("pbkdf2-sha1", "salt", "utf8", 4096, "password", "4b007901b765489abead49d926f721d065a429c1"),
    ("pbkdf2-sha1", "NaCl", "utf8", 1000, CN, "b64016a39d863c5f20147168ee0b262eb9caf529"),
    (
        "pbkdf2-sha256",
        "NaCl",
        "utf8",
        1000,
        CN,
        "eff8d4e2b3708f49494608c2160560ec0dc4435f4026ce45061d67fdc47a8fb1",
    ),
    (
        "pbkdf2-sha256",
        HEX_SALT,
        "hex",
        1000,
        "password",
        "26dd4e67a1c21047a4015f8b7a5d21e6eb24d202174cab07a8cd6ab9b1bdebd4",
    ),
    (
        "pbkdf2-sha256",
        "盐",
        "utf8",
        1200,
        CN,
        "b020a00a69ab68e8b5d98ea2d23eb9c8e9b7a2cffebfdd407bb043e337b049b8"
        "189b8152f60a85192b2954421220a600c8e735c818d866f090c24cd7a6cfd16b",
    ),
]

# (password, hash): htpasswd -bnBC 10, and the OpenBSD / jBCrypt published $2a$ vectors.
BCRYPT_KATS = [
    ("password", "$2y$10$67QnEzTdakD/b7Xso2Pc/OSSOHhCBiPF2BJCWmeWJidPMy5y4Sd0i"),
    (CN, "$2y$10$Kj4PCl/Mky6YecWd3gUt4eKTqI3yzFlEceMn0CUYDl7JpdNbeeicy"),
    ("", "$2a$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s."),
    ("a", "$2a$06$m0CrhHm10qJ3lXRY.5zDGO3rS2KdeeWLuGmsfGlMfOxih58VYVfxe"),
    ("abc", "$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i"),
]

PLAIN_ALGOS = ["md5", "sha1", "sha256", "sm3"]


def _salt_params(salt_encoding: str | None) -> dict[str, str]:
    return {"salt_encoding": salt_encoding} if salt_encoding else {}


def _salt_bytes(salt: str | None, salt_encoding: str | None) -> bytes:
    if salt is None:
        return b""
    return bytes.fromhex(salt) if salt_encoding == "hex" else salt.encode()


def reference_digest(fmt: str, password: str, salt: bytes = b"") -> str:
    """Test oracle for the digest formats, itself checked against openssl below."""
    algo, _, position = fmt.partition("-salt-")
    pw = password.encode()
    data = {"before": salt + pw, "after": pw + salt, "": pw}[position]
    return hashlib.new(algo, data).hexdigest()


# ----------------------------------------------------------------------- coverage


def test_every_format_has_known_answers():
    covered = {row[0] for row in DIGEST_KATS} | {row[0] for row in PBKDF2_KATS} | {"bcrypt"}
    assert covered == FORMATS
    assert len(FORMATS) == 15


# -------------------------------------------------------------------- digest KATs


@pytest.mark.parametrize(("fmt", "salt", "enc", "password", "expected"), DIGEST_KATS)
def test_digest_known_answers(fmt, salt, enc, password, expected):
    stored = encode_legacy(fmt, expected, salt, **_salt_params(enc))
    assert stored == f"{PREFIX}{fmt}${_salt_bytes(salt, enc).hex()}${expected}"
    assert is_legacy(stored)
    assert verify_legacy(stored, password) is True
    assert verify_legacy(stored, password + "x") is False
    assert verify_legacy(stored, "") is False
    assert (
        verify_legacy(stored, password.upper() if password != CN else "中华人民共和国密码2025")
        is False
    )


@pytest.mark.parametrize(("fmt", "salt", "enc", "password", "expected"), DIGEST_KATS)
def test_reference_oracle_matches_openssl_vectors(fmt, salt, enc, password, expected):
    assert reference_digest(fmt, password, _salt_bytes(salt, enc)) == expected


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
@pytest.mark.parametrize("algo", PLAIN_ALGOS)
def test_reference_oracle_matches_live_openssl(algo):
    data = "口令 ünïcode\x00\n".encode()
    out = subprocess.run(
        ["openssl", "dgst", f"-{algo}", "-r"], input=data, capture_output=True, check=True
    ).stdout
    assert out.split()[0].decode() == hashlib.new(algo, data).hexdigest()


def test_salt_swap_is_not_accepted():
    """A salt-before hash must not verify as salt-after with the same salt."""
    fmt, salt, enc, password, expected = DIGEST_KATS[2]
    stored = encode_legacy("md5-salt-after", expected, salt)
    assert verify_legacy(stored, password) is False


def test_hex_salt_and_utf8_salt_differ():
    # "4e61436c" as a UTF-8 salt is the 8 characters, not the bytes b"NaCl".
    expected = reference_digest("md5-salt-before", CN, b"NaCl")
    as_hex = encode_legacy("md5-salt-before", expected, "4e61436c", salt_encoding="hex")
    as_text = encode_legacy("md5-salt-before", expected, "4e61436c")
    assert verify_legacy(as_hex, CN) is True
    assert verify_legacy(as_text, CN) is False


def test_hash_normalised_to_lower_hex():
    upper = encode_legacy("sha1", "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8")
    assert upper == f"{PREFIX}sha1$$5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8"
    assert verify_legacy(upper, "password") is True
    salted = encode_legacy(
        "md5-salt-before", "7EC78C4D6B7B8BDB106275E611051CC9", "00FF10A5", salt_encoding="hex"
    )
    assert salted == f"{PREFIX}md5-salt-before$00ff10a5$7ec78c4d6b7b8bdb106275e611051cc9"


@pytest.mark.parametrize(
    ("fmt", "b64", "password"),
    [
        # printf password | openssl dgst -md5 -binary | openssl base64
        ("md5", "X03MO1qnZdYdgyfeuILPmQ==", "password"),
        ("md5", "X03MO1qnZdYdgyfeuILPmQ", "password"),
        ("sha256", "2DfNlBwrPflEBYO6ilrF85v5VQatyEeBv0TBJzNyJmg=", CN),
    ],
)
def test_base64_hash_is_normalised_to_hex(fmt, b64, password):
    stored = encode_legacy(fmt, b64, hash_encoding="base64")
    assert stored == f"{PREFIX}{fmt}$${reference_digest(fmt, password)}"
    assert verify_legacy(stored, password) is True


# -------------------------------------------------------------------- PBKDF2 KATs


@pytest.mark.parametrize(("fmt", "salt", "enc", "iterations", "password", "dk"), PBKDF2_KATS)
def test_pbkdf2_known_answers(fmt, salt, enc, iterations, password, dk):
    stored = encode_legacy(fmt, dk, salt, iterations=iterations, salt_encoding=enc)
    assert stored == f"{PREFIX}{fmt},i={iterations}${_salt_bytes(salt, enc).hex()}${dk}"
    assert verify_legacy(stored, password) is True
    assert verify_legacy(stored, password + " ") is False
    # Same key under another iteration count or hash must not verify.
    other = "pbkdf2-sha256" if fmt == "pbkdf2-sha1" else "pbkdf2-sha1"
    assert (
        verify_legacy(stored.replace(f",i={iterations}$", f",i={iterations + 1}$"), password)
        is False
    )
    if len(dk) in (40, 64):
        assert verify_legacy(stored.replace(fmt, other, 1), password) is False


def test_pbkdf2_iterations_given_as_decimal_string():
    fmt, salt, enc, iterations, password, dk = PBKDF2_KATS[2]
    stored = encode_legacy(fmt, dk, salt, iterations="4096")
    assert stored == encode_legacy(fmt, dk, salt, iterations=4096)
    assert verify_legacy(stored, password) is True


# -------------------------------------------------------------------- bcrypt


@pytest.mark.parametrize(("password", "hashed"), BCRYPT_KATS)
def test_bcrypt_known_answers(password, hashed):
    stored = encode_legacy("bcrypt", hashed)
    assert stored == f"{PREFIX}bcrypt$${hashed}"
    assert verify_legacy(stored, password) is True
    assert verify_legacy(stored, password + "!") is False


@pytest.mark.parametrize("password", ["password", CN, "身份证号码110101"])
def test_bcrypt_generated_by_library(password):
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    assert hashed.startswith("$2b$04$")
    stored = encode_legacy("bcrypt", hashed)
    assert verify_legacy(stored, password) is True
    assert verify_legacy(stored, password[:-1]) is False
    # The $2a$ / $2y$ spellings of the same hash verify the same way.
    for variant in ("$2a$", "$2y$"):
        assert verify_legacy(stored.replace("$2b$", variant, 1), password) is True


def test_bcrypt_only_first_72_bytes_count():
    password = "密" * 24  # 72 UTF-8 bytes
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    stored = encode_legacy("bcrypt", hashed)
    assert verify_legacy(stored, password) is True
    assert verify_legacy(stored, password + "码") is True  # what the source system did
    assert verify_legacy(stored, "密" * 23) is False


# ---------------------------------------------------------------- malformed input

GOOD_MD5 = f"{PREFIX}md5$$5f4dcc3b5aa765d61d8327deb882cf99"
GOOD_SALTED = f"{PREFIX}md5-salt-before$4e61436c$b9f7d0edbca371788c168fd936d6cbf7"
GOOD_PBKDF2 = f"{PREFIX}pbkdf2-sha1,i=2$73616c74$ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"
GOOD_BCRYPT = f"{PREFIX}bcrypt$${BCRYPT_KATS[0][1]}"

MALFORMED = [
    None,
    123,
    b"$legacy$md5$$5f4dcc3b5aa765d61d8327deb882cf99",
    "",
    "$legacy$",
    "$legacy$md5",
    "$legacy$md5$",
    "$legacy$md5$$",
    "$legacy$MD5$$5f4dcc3b5aa765d61d8327deb882cf99",
    "$legacy$md4$$5f4dcc3b5aa765d61d8327deb882cf99",
    "$LEGACY$md5$$5f4dcc3b5aa765d61d8327deb882cf99",
    "legacy$md5$$5f4dcc3b5aa765d61d8327deb882cf99",
    " " + GOOD_MD5,
    GOOD_MD5 + "\n",
    GOOD_MD5 + "$",
    GOOD_MD5 + "00",
    GOOD_MD5[:-2],
    GOOD_MD5[:-1],
    GOOD_MD5.upper().replace("$LEGACY$MD5", "$legacy$md5"),  # upper-case hex not canonical
    GOOD_MD5.replace("5f4d", "5g4d"),
    GOOD_MD5.replace("$$", "$00$"),  # salt on an unsalted format
    GOOD_MD5.replace("md5$", "md5,i=1$"),
    GOOD_SALTED.replace("$4e61436c$", "$$"),  # salted format without salt
    GOOD_SALTED.replace("4e61436c", "4e61436"),  # odd-length salt
    GOOD_SALTED.replace("4e61436c", "NaCl"),  # salt not hex
    f"{PREFIX}md5-salt-before${'00' * 257}$b9f7d0edbca371788c168fd936d6cbf7",
    GOOD_PBKDF2.replace(",i=2", ""),
    GOOD_PBKDF2.replace(",i=2", ",i=0"),
    GOOD_PBKDF2.replace(",i=2", ",i=02"),
    GOOD_PBKDF2.replace(",i=2", ",i=-2"),
    GOOD_PBKDF2.replace(",i=2", ",i=1_0"),
    GOOD_PBKDF2.replace(",i=2", ",i=２"),  # fullwidth digit
    GOOD_PBKDF2.replace(",i=2", ",i=99999999"),
    GOOD_PBKDF2.replace(",i=2", ",iterations=2"),
    GOOD_PBKDF2.replace(",i=2", ",i=2,i=3"),
    GOOD_PBKDF2.replace("$73616c74$", "$$"),
    f"{PREFIX}pbkdf2-sha1,i=2$73616c74$0011223344556677",  # 8-byte key: too short
    f"{PREFIX}pbkdf2-sha1,i=2$73616c74${'00' * 65}",  # 65-byte key: too long
    GOOD_BCRYPT.replace("bcrypt$$", "bcrypt$00$"),
    GOOD_BCRYPT.replace("bcrypt$", "bcrypt,i=1$"),
    GOOD_BCRYPT[:-1],
    GOOD_BCRYPT + "x",
    GOOD_BCRYPT.replace("$2y$", "$2x$"),
    GOOD_BCRYPT.replace("$2y$", "$2$"),
    GOOD_BCRYPT.replace("$2y$10$", "$2y$03$"),
    GOOD_BCRYPT.replace("$2y$10$", "$2y$31$"),  # above the cost cap: refused, not run
    GOOD_BCRYPT.replace("$2y$10$", "$2y$1a$"),
    GOOD_BCRYPT.replace("67Qn", "67Q!"),
    f"{PREFIX}bcrypt$$5f4dcc3b5aa765d61d8327deb882cf99",
    # Modern hashes are not legacy hashes.
    "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
    "$pbkdf2-sm3$i=600000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
]


def test_good_strings_used_by_malformed_cases_verify():
    assert verify_legacy(GOOD_MD5, "password")
    assert verify_legacy(GOOD_SALTED, CN)
    assert verify_legacy(GOOD_PBKDF2, "password")
    assert verify_legacy(GOOD_BCRYPT, "password")


@pytest.mark.parametrize("stored", MALFORMED)
@pytest.mark.parametrize("password", ["password", CN, ""])
def test_malformed_stored_returns_false(stored, password):
    assert verify_legacy(stored, password) is False


def test_is_legacy():
    assert is_legacy(GOOD_MD5) and is_legacy(GOOD_BCRYPT) and is_legacy(GOOD_PBKDF2)
    assert is_legacy("$legacy$garbage")  # routed to verify_legacy, which says False
    for value in (None, 1, b"$legacy$md5$$", "", "$argon2id$v=19$...", "$pbkdf2-sm3$i=1$a$b"):
        assert is_legacy(value) is False


@pytest.mark.parametrize("password", [None, 123, b"password", "\ud800password"])
def test_bad_password_types_return_false(password):
    for stored in (GOOD_MD5, GOOD_PBKDF2, GOOD_BCRYPT):
        assert verify_legacy(stored, password) is False


# ------------------------------------------------------------- import rejections

MD5_PW = "5f4dcc3b5aa765d61d8327deb882cf99"
SHA1_PW = "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8"


@pytest.mark.parametrize(
    ("args", "params", "message"),
    [
        (("md4", MD5_PW), {}, "unknown legacy hash format"),
        (("MD5", MD5_PW), {}, "unknown legacy hash format"),
        (("", MD5_PW), {}, "unknown legacy hash format"),
        ((None, MD5_PW), {}, "unknown legacy hash format"),
        (("md5", ""), {}, "non-empty"),
        (("md5", None), {}, "non-empty"),
        (("md5", MD5_PW[:-2]), {}, "16 bytes"),
        (("md5", MD5_PW[:-1]), {}, "hexadecimal"),
        (("md5", MD5_PW + "00"), {}, "16 bytes"),
        (("md5", SHA1_PW), {}, "16 bytes"),
        (("sha1", MD5_PW), {}, "20 bytes"),
        (("sha256", SHA1_PW), {}, "32 bytes"),
        (("sm3", MD5_PW), {}, "32 bytes"),
        (("md5", MD5_PW.replace("f", "g")), {}, "hexadecimal"),
        (("md5", " " + MD5_PW), {}, "hexadecimal"),
        (("md5", MD5_PW + "\n"), {}, "hexadecimal"),
        (("md5", "５" * 32), {}, "hexadecimal"),
        (("md5", MD5_PW, "NaCl"), {}, "unsalted"),
        (("md5", MD5_PW), {"salt_encoding": "hex"}, "unsalted"),
        (("md5-salt-before", MD5_PW), {}, "salt is required"),
        (("md5-salt-before", MD5_PW, ""), {}, "salt is required"),
        (("md5-salt-before", MD5_PW, "abc"), {"salt_encoding": "hex"}, "hex digits"),
        (("md5-salt-before", MD5_PW, "zz"), {"salt_encoding": "hex"}, "hex digits"),
        (("md5-salt-before", MD5_PW, "ab"), {"salt_encoding": "base64"}, "salt_encoding"),
        (("md5-salt-before", MD5_PW, "\ud800"), {}, "UTF-8"),
        (("md5-salt-before", MD5_PW, "s" * 257), {}, "1..256 bytes"),
        (("md5-salt-before", MD5_PW, b"NaCl"), {}, "salt must be a string"),
        (("md5", MD5_PW), {"hash_encoding": "base32"}, "hash_encoding"),
        (("md5", "X03MO1qnZdYdgyfeuILPmQ=="), {}, "hexadecimal"),
        (("md5", "X03MO1qnZdYdgyfeuILPmQ=="[:-4]), {"hash_encoding": "base64"}, "16 bytes"),
        (("md5", "X03MO1qnZdYdgyfeuILPmQ="), {"hash_encoding": "base64"}, "padding"),
        (("md5", "X03MO1qnZdYdgyfe-ILPmQ=="), {"hash_encoding": "base64"}, "base64"),
        (("md5", "X03MO1qnZdYdgyfeuILPm"), {"hash_encoding": "base64"}, "base64"),
        (("md5", MD5_PW), {"iterations": 1000}, "unexpected parameter"),
        (("md5", MD5_PW), {"rounds": 1}, "unexpected parameter"),
        (("pbkdf2-sha1", SHA1_PW, "salt"), {}, "iterations"),
        (("pbkdf2-sha1", SHA1_PW, "salt"), {"iterations": 0}, "iterations"),
        (("pbkdf2-sha1", SHA1_PW, "salt"), {"iterations": -5}, "iterations"),
        (("pbkdf2-sha1", SHA1_PW, "salt"), {"iterations": 10_000_001}, "iterations"),
        (("pbkdf2-sha1", SHA1_PW, "salt"), {"iterations": 1.5}, "iterations"),
        (("pbkdf2-sha1", SHA1_PW, "salt"), {"iterations": True}, "iterations"),
        (("pbkdf2-sha1", SHA1_PW, "salt"), {"iterations": "01000"}, "iterations"),
        (("pbkdf2-sha1", SHA1_PW, "salt"), {"iterations": "1e3"}, "iterations"),
        (("pbkdf2-sha1", SHA1_PW), {"iterations": 1000}, "salt is required"),
        (("pbkdf2-sha1", "00" * 15, "salt"), {"iterations": 1000}, "16..64 bytes"),
        (("pbkdf2-sha256", "00" * 65, "salt"), {"iterations": 1000}, "16..64 bytes"),
        (("bcrypt", BCRYPT_KATS[0][1], "salt"), {}, "no salt"),
        (("bcrypt", BCRYPT_KATS[0][1]), {"hash_encoding": "hex"}, "unexpected parameter"),
        (("bcrypt", BCRYPT_KATS[0][1][:-1]), {}, "53 characters"),
        (("bcrypt", BCRYPT_KATS[0][1] + "a"), {}, "53 characters"),
        (("bcrypt", BCRYPT_KATS[0][1].replace("$2y$", "$2x$")), {}, "$2a$"),
        (("bcrypt", BCRYPT_KATS[0][1].replace("$2y$", "$1$")), {}, "$2a$"),
        (("bcrypt", BCRYPT_KATS[0][1].replace("$10$", "$03$")), {}, "cost 3"),
        (("bcrypt", BCRYPT_KATS[0][1].replace("$10$", "$17$")), {}, "cost 17"),
        (("bcrypt", BCRYPT_KATS[0][1].replace("67Qn", "67Q+")), {}, "53 characters"),
        (("bcrypt", MD5_PW), {}, "$2a$"),
    ],
)
def test_encode_rejects_bad_rows(args, params, message):
    with pytest.raises(LegacyHashError) as info:
        encode_legacy(*args, **params)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


# --------------------------------------------------------------------- properties

passwords = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
cjk_passwords = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF))


@settings(max_examples=200, deadline=None)
@given(
    algo=st.sampled_from(PLAIN_ALGOS),
    password=passwords | cjk_passwords,
    other=passwords,
)
def test_plain_digest_round_trip(algo, password, other):
    stored = encode_legacy(algo, reference_digest(algo, password))
    assert verify_legacy(stored, password) is True
    assume(other != password)
    assert verify_legacy(stored, other) is False


@settings(max_examples=200, deadline=None)
@given(
    fmt=st.sampled_from(sorted(f for f in FORMATS if "-salt-" in f)),
    salt=st.binary(min_size=1, max_size=32),
    password=passwords,
    other=passwords,
)
def test_salted_digest_round_trip(fmt, salt, password, other):
    stored = encode_legacy(
        fmt, reference_digest(fmt, password, salt), salt.hex(), salt_encoding="hex"
    )
    assert verify_legacy(stored, password) is True
    assume(other != password)
    assert verify_legacy(stored, other) is False


@settings(max_examples=300, deadline=None)
@given(tail=st.text(max_size=80), password=passwords)
def test_arbitrary_legacy_strings_never_raise(tail, password):
    assert verify_legacy(PREFIX + tail, password) in (True, False)
    assert verify_legacy(GOOD_MD5[: len(GOOD_MD5) // 2] + tail, password) in (True, False)
