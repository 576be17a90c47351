"""Audit masking goes by what a field is: personal fields and free text are masked,
identifiers are left alone unless the whole value is an ID number or a phone."""

from __future__ import annotations

from idp.audit.masking import mask_details
from idp.identity.masking import mask_text

CITIZEN_ID = "11010519491231002X"
PHONE = "13912345678"
# Random hex as uuid4().hex, secrets.token_hex and base64url ids come out now and then:
# a run that reads as a mobile number, and one that reads as an 18-digit ID number.
RUN_ID = "691285123456789abcdef0123abcdef0"  # 15 digits: read as an old ID number
GID = "ab110105194912310021cdef01234567"
JTI = "Zx_13800138000-Qw"


def test_digit_runs_inside_identifiers_survive():
    details = {"run_id": RUN_ID, "gid": GID, "jti": JTI, "credential": RUN_ID.upper(),
               "candidates": [RUN_ID, GID], "counts": {"read": 5, "run": RUN_ID}}
    # What used to happen to them: '691285*****6789abcdef…'.
    assert all(mask_text(v) != v for v in (RUN_ID, GID, JTI))
    assert mask_details(details) == details


def test_personal_fields_and_free_text_are_still_masked():
    out = mask_details({
        "id_number": CITIZEN_ID, "username": PHONE, "phone": PHONE, "name": "李四",
        "note": f"用户 {CITIZEN_ID} 手机 {PHONE}", "reason": f"phone {PHONE} locked",
        "legacy_id": f"u{PHONE}", "nested": [{"error": f"no person {CITIZEN_ID}"}]})
    assert out["id_number"] == "110105********002X" == out["note"].split()[1]
    assert out["phone"] == "139****5678" and PHONE not in out["username"]
    assert out["name"] == "李*"
    assert out["reason"] == "phone 139****5678 locked"
    assert PHONE not in out["legacy_id"]
    assert CITIZEN_ID not in out["nested"][0]["error"]


def test_a_whole_id_number_or_phone_is_masked_in_any_field():
    out = mask_details({"person": CITIZEN_ID, "target": f"+86 {PHONE}", "to": [PHONE],
                        CITIZEN_ID: "as a key"})
    assert out["person"] == "110105********002X"
    assert PHONE not in out["target"] and out["to"] == ["139****5678"]
    assert list(out)[-1] == "110105********002X"


def test_strings_outside_any_field_are_free_text():
    assert mask_details([f"call {PHONE}"]) == ["call 139****5678"]
