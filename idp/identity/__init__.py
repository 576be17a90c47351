"""Identifiers the provider keys accounts on: person ID numbers, credit codes, phones.

Everything here is pure (no Flask, no database) so that registration, login,
importers and the CLI all validate and mask identically.  Import from this
package rather than from the submodules; the CLI group lives in
:mod:`idp.identity.cli` and is not imported here (it pulls in click).
"""

from __future__ import annotations

from idp.identity.credit_code import (
    AUTHORITIES,
    CreditCode,
    OrgCode,
    compute_credit_check_char,
    compute_org_check_char,
    credit_code_embeds,
    is_valid_credit_code,
    org_code_of,
    parse_credit_code,
    parse_org_code,
)
from idp.identity.describe import describe
from idp.identity.errors import (
    InvalidCreditCode,
    InvalidIdentifier,
    InvalidIdNumber,
    InvalidOrgCode,
    InvalidPhone,
)
from idp.identity.masking import (
    mask_credit_code,
    mask_id_number,
    mask_name,
    mask_phone,
    mask_record,
    mask_text,
)
from idp.identity.normalize import normalize_identifier
from idp.identity.person_id import (
    PersonId,
    compute_check_char,
    convert_15_to_18,
    is_valid,
    parse_person_id,
)
from idp.identity.phone import is_valid_phone, normalize_phone

__all__ = [
    "AUTHORITIES",
    "CreditCode",
    "InvalidCreditCode",
    "InvalidIdNumber",
    "InvalidIdentifier",
    "InvalidOrgCode",
    "InvalidPhone",
    "OrgCode",
    "PersonId",
    "compute_check_char",
    "compute_credit_check_char",
    "compute_org_check_char",
    "convert_15_to_18",
    "credit_code_embeds",
    "describe",
    "is_valid",
    "is_valid_credit_code",
    "is_valid_phone",
    "mask_credit_code",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "mask_record",
    "mask_text",
    "normalize_identifier",
    "normalize_phone",
    "org_code_of",
    "parse_credit_code",
    "parse_org_code",
    "parse_person_id",
]
