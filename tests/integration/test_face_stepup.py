"""Online face match (issue 5): an L3 account whose password session is asked for L4 steps
up with a camera capture compared against the register's ID-card photo. The account is
raised to L4 (method face_online) and the session gains amr "face": only both together
make an L4 session. Refusals (mismatch, bad pictures, the daily limit, a service down,
no CSRF token, an account without a verified real name) leave the level where it was."""

from __future__ import annotations

import io
import json
import struct
import zlib
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import audit
from idp.audit import AuditEvent
from idp.authn import assurance, face
from idp.extensions import db
from idp.models import Person
from tests.helpers import (
    CITIZEN_ID,
    authorize_url,
    exchange,
    follow_login,
    form_fields,
    pkce_pair,
    query,
)

# -- pictures, built by hand: no image library needed ---------------------------------


def _segment(marker: int, payload: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def gray_jpeg(width: int = 640, height: int = 480, *, comment: bytes = b"") -> bytes:
    """A real baseline JPEG (decodes to mid-grey): every 8x8 block is "DC unchanged, end
    of block", two bits with one-code Huffman tables."""
    one_code = bytes([1] + [0] * 15) + b"\x00"
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    bits = blocks * 2
    scan = b"\x00" * (bits // 8) + (bytes([(1 << (8 - bits % 8)) - 1]) if bits % 8 else b"")
    return (b"\xff\xd8"
            + _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
            + (_segment(0xFE, comment) if comment else b"")
            + _segment(0xDB, b"\x00" + b"\x01" * 64)
            + _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
            + _segment(0xC4, b"\x00" + one_code + b"\x10" + one_code)
            + _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
            + scan + b"\xff\xd9")


def gray_png(width: int, height: int, *, pad: int = 1024) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"tEXt", b"Comment\x00" + b"x" * pad)
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


JPEG = gray_jpeg()


# -- a browser at the step-up page -------------------------------------------------------


def set_level(person, level: str, method: str | None = None) -> None:
    person.assurance_level = level
    person.assurance_method = method
    db.session.commit()


def account(person) -> Person:
    db.session.expire_all()
    return db.session.get(Person, person.id)


def events(name: str) -> list[AuditEvent]:
    audit.flush()
    db.session.expire_all()
    return db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)
                              .order_by(AuditEvent.seq)).all()


class Flow:
    """One authorization request asking for ``acr_values``, signed in with the password,
    standing at the step-up page."""

    def __init__(self, client, rp, acr_values="L4"):
        self.client, self.rp = client, rp
        self.verifier, challenge = pkce_pair()
        self.state = "face-" + acr_values.replace(" ", "-")
        resp = follow_login(client, client.get(authorize_url(
            rp, acr_values=acr_values, code_challenge=challenge, code_challenge_method="S256",
            state=self.state)))
        loc = resp.headers.get("Location", "")
        assert urlsplit(loc).path == "/login/step-up", (resp.status_code, loc)
        self.rid = query(loc)["rid"]
        self.html = client.get(loc).get_data(as_text=True)
        self.csrf = form_fields(self.html)["csrf_token"]

    def post(self, action: str, **data):
        resp = self.client.post("/login/step-up", data={
            "csrf_token": self.csrf, "rid": self.rid, "action": action, **data})
        self.html = resp.get_data(as_text=True)
        return resp

    def face_page(self):
        return self.client.get(f"/login/step-up/face?rid={self.rid}")

    def face_json(self, image: bytes | None = JPEG, *, csrf: bool = True, liveness=None):
        """As face_capture.js sends it: multipart, CSRF token in a header, JSON back."""
        data = {"rid": self.rid}
        if image is not None:
            data["image"] = (io.BytesIO(image), "face.jpg", "image/jpeg")
        if liveness is not None:
            data["liveness"] = json.dumps(liveness)
        headers = {"Accept": "application/json"}
        if csrf:
            headers["X-CSRFToken"] = self.csrf
        return self.client.post("/login/step-up/face", data=data, headers=headers,
                                content_type="multipart/form-data")

    def face_form(self, image: bytes = JPEG):
        """The plain upload form (no script): csrf_token field, HTML back."""
        return self.client.post("/login/step-up/face", content_type="multipart/form-data",
                                data={"csrf_token": self.csrf, "rid": self.rid,
                                      "image": (io.BytesIO(image), "photo.jpg")})

    def finish(self, resp) -> dict:
        """From the redirect back to /authorize to the ID token's claims."""
        assert resp.status_code == 302, resp.get_data(as_text=True)[-600:]
        final = follow_login(self.client, resp)
        q = query(final.headers["Location"])
        assert q.get("state") == self.state and "code" in q, q
        body = exchange(self.client, self.rp, q["code"], self.verifier).get_json()
        jwks = KeySet.import_key_set(self.client.get("/jwks").get_json())
        return jwt.decode(body["id_token"], jwks, algorithms=["ES256", "RS256"]).claims

    def still_below(self) -> bool:
        """A fresh request for the same level lands on the step-up page again."""
        resp = self.client.get(authorize_url(self.rp, acr_values="L4"))
        return urlsplit(resp.headers.get("Location", "")).path == "/login/step-up"


# -- the level arithmetic ---------------------------------------------------------------


def test_only_an_l4_account_with_face_in_the_session_makes_an_l4_session():
    assert assurance.session_level("L4", ["pwd"]) == "L2"
    assert assurance.session_level("L3", ["pwd", "face"]) == "L3"
    assert assurance.session_level("L4", ["pwd", "sms"]) == "L3"
    assert assurance.session_level("L4", ["pwd", "face"]) == "L4"
    assert assurance.session_level("L5", ["pwd", "face"]) == "L4"


# -- the whole step-up --------------------------------------------------------------------


def test_l3_account_steps_up_to_l4_with_a_camera_capture(ctx, client, person, rp):
    set_level(person, "L3", "register")
    flow = Flow(client, rp)
    assert "stepup-face" in flow.html and "无法在此达到" not in flow.html
    # SMS adds a factor but an L3 account with two factors is still L3: not offered.
    assert "stepup-sms" not in flow.html
    page = flow.face_page()
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="face-capture"' in html and "face_capture.js" in html
    assert 'capture="user"' in html and 'data-csrf="' in html and "<script>" not in html
    assert "script-src" not in page.headers["Content-Security-Policy"]  # 'self' only

    resp = flow.face_json(liveness={"source": "camera", "width": 640, "height": 480})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["ok"] is True and body["acr"] == "L4"
    assert urlsplit(body["redirect"]).path == "/authorize"
    claims = flow.finish(client.get(body["redirect"]))
    assert claims["acr"] == "L4"
    assert claims["amr"][:1] == ["pwd"] and set(claims["amr"]) == {"pwd", "face"}

    raised = account(person)
    assert (raised.assurance_level, raised.assurance_method) == ("L4", "face_online")
    assert [(e.details["from"], e.details["to"], e.details["method"])
            for e in events("assurance.raised")] == [("L3", "L4", "face_online")]
    ok = events("stepup.success")
    assert [(e.details["method"], e.details["from"], e.details["to"]) for e in ok] == [
        ("face", "L2", "L4")]
    assert ok[0].details["score"] >= ctx.config["FACE_MIN_SCORE"]
    assert not events("assurance.refused")
    # The session now holds L4: the next request for L4 needs nothing more.
    assert not flow.still_below()


def test_plain_upload_form_without_script(ctx, client, person, rp):
    set_level(person, "L3", "register")
    flow = Flow(client, rp)
    claims = flow.finish(flow.face_form(gray_png(480, 640)))
    assert claims["acr"] == "L4" and set(claims["amr"]) == {"pwd", "face"}


def test_an_l4_account_still_needs_the_face_in_this_session(ctx, client, person, rp):
    # L4 from a kiosk visit last month; today's password session proves L2 only.
    set_level(person, "L4", "kiosk_chip_face")
    flow = Flow(client, rp)
    assert "stepup-face" in flow.html
    claims = flow.finish(flow.face_form())
    assert claims["acr"] == "L4" and set(claims["amr"]) == {"pwd", "face"}
    # Nothing to raise: the account keeps how it was verified.
    assert account(person).assurance_method == "kiosk_chip_face"
    assert not events("assurance.raised")


def test_l2_account_verifies_its_real_name_first_then_the_face(ctx, client, person, rp):
    assert person.assurance_level == "L2"
    flow = Flow(client, rp)
    assert "realname-form" in flow.html and "核验通过后，还需进行人脸识别" in flow.html
    assert "stepup-face" not in flow.html
    # The capture page and the comparison refuse until the name is verified: the register
    # photo of an unverified number proves nothing about this account.
    early = flow.face_page()
    assert early.status_code == 302 and urlsplit(early.headers["Location"]).path == (
        "/login/step-up")
    refused = flow.face_json()
    assert refused.status_code == 403 and refused.get_json()["error"] == "realname_required"
    assert "实名核验" in refused.get_json()["message"]
    assert account(person).assurance_level == "L2"

    done = flow.post("realname", name="李四", id_number=CITIZEN_ID)
    assert done.status_code == 200 and "实名核验已通过" in flow.html
    assert "stepup-face" in flow.html and "realname-form" not in flow.html
    claims = flow.finish(flow.face_form())
    assert claims["acr"] == "L4" and set(claims["amr"]) == {"pwd", "face"}
    assert [(e.details["from"], e.details["to"], e.details["method"])
            for e in events("assurance.raised")] == [("L2", "L3", "register"),
                                                     ("L3", "L4", "face_online")]


# -- refusals --------------------------------------------------------------------------------


def test_a_different_face_is_refused_and_changes_nothing(ctx, client, person, rp, monkeypatch):
    set_level(person, "L3", "register")
    monkeypatch.setitem(ctx.config, "FACE_DEV_MISMATCH", [CITIZEN_ID.lower()])
    flow = Flow(client, rp)
    resp = flow.face_json()
    assert resp.status_code == 403
    body = resp.get_json()
    assert body["error"] == "mismatch" and "人脸比对未通过" in body["message"]
    assert "ok" not in body and "redirect" not in body
    assert account(person).assurance_level == "L3"
    assert flow.still_below()
    [refused] = events("assurance.refused")
    assert refused.details["reason"] == "mismatch"
    assert refused.details["method"] == "face_online"
    assert refused.details["score"] < ctx.config["FACE_MIN_SCORE"]
    assert not events("stepup.success") and not events("assurance.raised")
    # The form path says the same on a readable page.
    page = flow.face_form()
    text = page.get_data(as_text=True)
    assert page.status_code == 403 and 'role="alert"' in text and "人脸比对未通过" in text


@pytest.mark.parametrize(("image", "detail"), [
    (b"GIF89a" + b"\x00" * 4000, "format"),
    (gray_jpeg(640, 480)[:600], "too_small_file"),
    (gray_jpeg(640, 480, comment=b"x" * 60000) + b"\x00" * (2 * 1024 * 1024),
     "too_large_file"),
    (gray_jpeg(160, 120, comment=b"x" * 2000), "too_few_pixels"),
    (gray_png(100, 300), "too_few_pixels"),
    (gray_png(300, 300)[:1500], "corrupt"),
    (gray_jpeg(640, 480)[:1200], "corrupt"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 2000, "corrupt"),
    (None, "empty"),
])
def test_unusable_pictures_are_refused_readably(ctx, client, person, rp, image, detail):
    set_level(person, "L3", "register")
    flow = Flow(client, rp)
    resp = flow.face_json(image)
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["error"] == "bad_image"
    assert "JPEG 或 PNG" in body["message"] and "200×200" in body["message"]
    [refused] = events("assurance.refused")
    assert refused.details == {"reason": "bad_image", "method": "face_online",
                               "detail": detail}
    assert account(person).assurance_level == "L3"


def test_bad_pictures_use_no_attempts_but_comparisons_are_limited_per_day(
        ctx, client, person, rp, monkeypatch):
    set_level(person, "L3", "register")
    flow = Flow(client, rp)
    tries = ctx.config["FACE_DAILY_TRIES"]
    for _ in range(tries + 1):
        assert flow.face_json(b"not a picture" * 100).status_code == 400
    monkeypatch.setitem(ctx.config, "FACE_DEV_MISMATCH", [CITIZEN_ID])
    for _ in range(tries):
        assert flow.face_json().get_json()["error"] == "mismatch"
    monkeypatch.setitem(ctx.config, "FACE_DEV_MISMATCH", [])
    # The right face, but the day's comparisons are used up.
    late = flow.face_json()
    assert late.status_code == 429 and late.get_json()["error"] == "too_many"
    assert "次数已用完" in late.get_json()["message"]
    assert account(person).assurance_level == "L3"
    assert [e.details["reason"] for e in events("assurance.refused")][-1] == "too_many"


def test_the_comparison_needs_the_csrf_token(ctx, client, person, rp):
    set_level(person, "L3", "register")
    flow = Flow(client, rp)
    resp = flow.face_json(csrf=False)
    assert resp.status_code == 400 and "页面已过期" in resp.get_data(as_text=True)
    stale = flow.client.post("/login/step-up/face", content_type="multipart/form-data",
                             headers={"X-CSRFToken": "forged"},
                             data={"rid": flow.rid, "image": (io.BytesIO(JPEG), "f.jpg")})
    assert stale.status_code == 400
    assert account(person).assurance_level == "L3"
    assert not events("assurance.refused")  # refused before any comparison


class _Broken:
    def verify(self, person, image, *, liveness=None):
        raise ConnectionError("photo register timed out")


class _Lax:
    """A vendor whose own threshold is lower than ours; records what it was given."""

    def __init__(self):
        self.seen: list[tuple[str, int, dict | None]] = []

    def verify(self, person, image, *, liveness=None):
        self.seen.append((person.id, len(image), liveness))
        return face.FaceResult(True, 0.55, None)


def test_a_failing_service_is_unavailable_not_an_error(ctx, client, person, rp, monkeypatch):
    set_level(person, "L3", "register")
    monkeypatch.setitem(ctx.extensions, "idp.plugin.FACE_VERIFIER", _Broken())
    flow = Flow(client, rp)
    resp = flow.face_json()
    assert resp.status_code == 503 and resp.get_json()["error"] == "unavailable"
    page = flow.face_form()
    assert page.status_code == 503 and "暂时不可用" in page.get_data(as_text=True)
    assert account(person).assurance_level == "L3"


def test_a_match_below_the_threshold_is_a_mismatch(ctx, client, person, rp, monkeypatch):
    set_level(person, "L3", "register")
    lax = _Lax()
    monkeypatch.setitem(ctx.extensions, "idp.plugin.FACE_VERIFIER", lax)
    flow = Flow(client, rp)
    resp = flow.face_json(liveness={"source": "camera", "width": 640, "height": 480})
    assert resp.status_code == 403 and resp.get_json()["error"] == "mismatch"
    assert lax.seen == [(person.id, len(JPEG), {"source": "camera", "width": 640,
                                                 "height": 480})]
    assert account(person).assurance_level == "L3"


def test_the_dev_verifier_is_picked_by_configuration(ctx, monkeypatch):
    monkeypatch.delitem(ctx.extensions, "idp.plugin.FACE_VERIFIER", raising=False)
    monkeypatch.setitem(ctx.config, "FACE_VERIFIER",
                        "tests.integration.test_face_stepup:_Broken")
    assert isinstance(face.verifier(), _Broken)
    monkeypatch.setitem(ctx.extensions, "idp.plugin.FACE_VERIFIER", None)
    monkeypatch.setitem(ctx.config, "FACE_VERIFIER", None)
    assert face.enabled() and isinstance(face.verifier(), face.DevVerifier)
    # Unset in a deployment with its own database: nothing that says yes to any photo.
    monkeypatch.setitem(ctx.extensions, "idp.plugin.FACE_VERIFIER", None)
    monkeypatch.setitem(ctx.config, "EMBEDDED", False)
    monkeypatch.setitem(ctx.config, "TESTING", False)
    assert not face.enabled()
    with pytest.raises(RuntimeError):
        face.verifier()


def test_without_a_face_service_l4_stays_out_of_reach(ctx, client, person, rp, monkeypatch):
    set_level(person, "L3", "register")
    monkeypatch.setitem(ctx.config, "FACE_VERIFIER", "off")
    flow = Flow(client, rp)
    assert "无法在此达到该认证等级" in flow.html and "stepup-face" not in flow.html
    assert flow.face_page().status_code == 302
    resp = flow.face_json()
    assert resp.status_code == 403 and resp.get_json()["error"] == "not_offered"
    assert account(person).assurance_level == "L3"


def test_a_face_match_does_not_reach_l5(ctx, client, person, rp):
    set_level(person, "L3", "register")
    flow = Flow(client, rp, acr_values="L5")
    assert "stepup-face" not in flow.html and "realname-form" not in flow.html
    resp = flow.face_json()
    assert resp.status_code == 403 and resp.get_json()["error"] == "not_offered"
    assert account(person).assurance_level == "L3"


def test_header_reading(ctx):
    assert face.inspect_image(JPEG) == face.ImageInfo("jpeg", 640, 480)
    assert face.inspect_image(gray_png(320, 240)) == face.ImageInfo("png", 320, 240)
    # Progressive frame header (SOF2) after a DHT: the dimensions come from the frame.
    progressive = JPEG.replace(b"\xff\xc0", b"\xff\xc2", 1)
    assert face.inspect_image(progressive).width == 640
    huge = gray_png(300, 300)
    header = b"IHDR" + struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    huge = huge[:12] + header + struct.pack(">I", zlib.crc32(header)) + huge[33:]
    with pytest.raises(face.BadImage) as exc:
        face.inspect_image(huge)
    assert exc.value.detail == "too_many_pixels"
