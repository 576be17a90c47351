"""Tamper-evident audit log: entries chained by SM3, verifiable end to end.

    from idp import audit
    audit.record("login.failure", actor="system", subject=None, client_id="rp1",
                 details={"username": "11010519491231002X", "reason": "bad password"})
    audit.verify()          # VerifyResult(ok=True, count=…, …)
    audit.head()            # (seq, hash): keep it elsewhere, pass back as expected_head

``record`` masks personal data first (:mod:`idp.audit.masking`) and writes in its own
transaction (:mod:`idp.audit.log`); the canonical form that is hashed, and what the
chain does and does not prove, are in :mod:`idp.audit.chain`.
"""

from .chain import (
    FIELDS,
    ZERO_HASH,
    VerifyResult,
    canonical_bytes,
    compute_hash,
    export_line,
    walk,
)
from .log import AuditError, Entry, export, head, record, verify
from .masking import mask_details, mask_identifier
from .models import AuditEvent

__all__ = [
    "FIELDS",
    "ZERO_HASH",
    "AuditError",
    "AuditEvent",
    "Entry",
    "VerifyResult",
    "canonical_bytes",
    "compute_hash",
    "export",
    "export_line",
    "head",
    "mask_details",
    "mask_identifier",
    "record",
    "verify",
    "walk",
]
