"""Online face match: the person in front of the camera is the holder of the ID number.

This is what lifts a real-name (``L3``) account to ``L4`` without a trip to a kiosk:
"real person, real name, real document". In production the verifier sends the live
capture (with the liveness result of the capture SDK) to the public-security photo
register — the CTID "network identity" service or a provincial face-comparison
service — which compares it with the photo on file for that ID number and answers with
a similarity score. The comparison is against *the register's* photo of the account's
number, so it proves something only for an account whose name and number were already
verified (``L3``); an ``L2`` account first goes through ``realname``.

``FACE_VERIFIER`` picks the verifier: ``"package.module:ClassName"`` (a class made with
no arguments whose ``verify(person, image: bytes, *, liveness: dict | None) ->
FaceResult`` asks the real service), ``"dev"`` (below), ``"off"`` (no online face match
is offered), or ``None``: the dev verifier in the embedded demo and in tests, off
otherwise, so a production deployment never gives L4 for any photo by default.

``liveness`` is what the capture reported: the web page sends its source and size; a
vendor capture SDK's liveness token belongs there. A single still from a browser is no
proof of a live person by itself, so a production verifier should demand the service's
liveness check. ``reason`` on refusal: ``mismatch`` (not the same person),
``no_liveness`` (the liveness check failed), ``bad_image``, ``unavailable`` (the service
could not be asked). A verifier may raise; that counts as ``unavailable``.

``verify_person`` is what pages call: it checks the account's level and the image,
limits attempts per person and day (each one may cost money at the register and tells
an impostor how close they came), and on success raises the account to ``L4`` with
method ``face_online``. The image itself is never stored, logged or audited.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from flask import current_app

from .. import audit, plugins
from ..accounts import raise_level
from ..identity import InvalidIdNumber, parse_person_id
from ..models import Person
from ..store import store
from . import assurance

log = logging.getLogger(__name__)

DAY = 24 * 3600
METHOD = "face_online"
# Larger pictures are not faces from a phone camera but a way to make the comparison
# service decode something huge (a small PNG can declare enormous dimensions).
MAX_SIDE = 8192

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic...): they
# carry the dimensions. C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# Markers without a length field.
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}


@dataclass
class FaceResult:
    ok: bool
    score: float = 0.0
    # None, or: mismatch, no_liveness, bad_image, unavailable, too_many (daily attempts
    # used up), realname_required (the account is not yet L3)
    reason: str | None = None


@dataclass
class ImageInfo:
    kind: str  # "jpeg" | "png"
    width: int
    height: int


class BadImage(ValueError):
    """Not a picture the comparison can use; ``detail`` says why (for the audit trail)."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise BadImage("corrupt")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker in (0xD8, 0xD9, 0xDA):  # image data or end before any frame header
            break
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2 or pos + 2 + length > len(data):
            raise BadImage("corrupt")
        if marker in _JPEG_SOF:
            if length < 7:
                raise BadImage("corrupt")
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            # A cut-off upload has its header but not its end. (Data after the end
            # marker, as some phones append, is allowed.)
            if data.find(b"\xff\xd9", pos) < 0:
                raise BadImage("corrupt")
            return width, height
        pos += 2 + length
    raise BadImage("corrupt")


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 45 or data[8:16] != b"\x00\x00\x00\rIHDR":
        raise BadImage("corrupt")
    (crc,) = struct.unpack(">I", data[29:33])
    # Header intact, and the end chunk present: a cut-off upload has no IEND.
    if zlib.crc32(data[12:29]) != crc or b"IEND" not in data[-64:]:
        raise BadImage("corrupt")
    return struct.unpack(">II", data[16:24])


def inspect_image(data: bytes) -> ImageInfo:
    """Format and dimensions from the file's own header (no image library needed), or
    ``BadImage``: a JPEG or PNG of ``FACE_IMAGE_MIN_BYTES``..``FACE_IMAGE_MAX_BYTES``
    bytes and at least ``FACE_IMAGE_MIN_SIDE`` pixels each way."""
    cfg = current_app.config
    if not isinstance(data, bytes | bytearray) or not data:
        raise BadImage("empty")
    if len(data) < int(cfg["FACE_IMAGE_MIN_BYTES"]):
        raise BadImage("too_small_file")
    if len(data) > int(cfg["FACE_IMAGE_MAX_BYTES"]):
        raise BadImage("too_large_file")
    if data[:3] == b"\xff\xd8\xff":
        kind, (width, height) = "jpeg", _jpeg_size(data)
    elif data[:8] == _PNG_SIGNATURE:
        kind, (width, height) = "png", _png_size(data)
    else:
        raise BadImage("format")
    low = int(cfg["FACE_IMAGE_MIN_SIDE"])
    if width < low or height < low:
        raise BadImage("too_few_pixels")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise BadImage("too_many_pixels")
    return ImageInfo(kind, width, height)


class DevVerifier:
    """Stands in for the photo register in demos and tests. It checks the picture is a
    usable JPEG/PNG, then says "same person" unless the account's ID number is listed in
    ``FACE_DEV_MISMATCH``. It compares no faces: never use it in production."""

    def verify(self, person: Person, image: bytes, *,
               liveness: dict[str, Any] | None = None) -> FaceResult:
        try:
            inspect_image(image)
        except BadImage:
            return FaceResult(False, 0.0, "bad_image")
        mismatch = set()
        for raw in current_app.config.get("FACE_DEV_MISMATCH") or []:
            try:
                mismatch.add(parse_person_id(raw).number)
            except InvalidIdNumber:
                continue
        # A stable, plausible-looking score, so repeated demos show the same number.
        jitter = hashlib.sha256(image).digest()[0] / 255 * 0.05
        if person.id_number in mismatch:
            return FaceResult(False, round(0.31 + jitter, 3), "mismatch")
        return FaceResult(True, round(0.92 + jitter, 3), None)


def enabled() -> bool:
    """Whether this deployment has a face-comparison service (see FACE_VERIFIER)."""
    return plugins.chosen("FACE_VERIFIER") is not None


def verifier():
    return plugins.load("FACE_VERIFIER", {"dev": DevVerifier})


def verify_person(person: Person, image: bytes, *, liveness: dict[str, Any] | None = None,
                  client_id: str | None = None) -> FaceResult:
    """Compare ``image`` with the register's photo of the account's ID number; on
    success the account is raised to ``L4`` (method ``face_online``)."""
    detail = None
    if assurance.rank(person.assurance_level) < assurance.rank("L3"):
        result = FaceResult(False, 0.0, "realname_required")
    else:
        try:
            inspect_image(image)
        except BadImage as exc:
            # Refused before the register is asked: costs nothing, so it uses no attempt.
            result, detail = FaceResult(False, 0.0, "bad_image"), exc.detail
        else:
            result = _ask(person, image, liveness)
    if result.ok:
        raise_level(person, "L4", METHOD, actor=person.id, client_id=client_id)
    else:
        details: dict[str, Any] = {"reason": result.reason, "method": METHOD}
        if detail:
            details["detail"] = detail
        if result.score:
            details["score"] = result.score
        audit.record("assurance.refused", actor=person.id, subject=person.id,
                     client_id=client_id, details=details)
    return result


def _ask(person: Person, image: bytes, liveness: dict[str, Any] | None) -> FaceResult:
    cfg = current_app.config
    if store().incr(f"face:tries:{person.id}", DAY) > int(cfg["FACE_DAILY_TRIES"]):
        return FaceResult(False, 0.0, "too_many")
    try:
        result = verifier().verify(person, image, liveness=liveness)
    except Exception:  # a remote service failing must not become a 500
        log.exception("face verifier failed")
        return FaceResult(False, 0.0, "unavailable")
    if not isinstance(result, FaceResult):
        log.error("face verifier returned %r, not a FaceResult", type(result).__name__)
        return FaceResult(False, 0.0, "unavailable")
    # The service's own "match" is not enough below our threshold: the score is what
    # the register vouches for, and a lax vendor default must not decide L4.
    if result.ok and result.score < float(cfg["FACE_MIN_SCORE"]):
        return FaceResult(False, result.score, "mismatch")
    return result
