"""Tamper-evident audit log: entries chained by SM3, verifiable end to end.

    from idp import audit
    audit.record("login.failure", actor="system", subject=None, client_id="rp1",
                 details={"username": "11010519491231002X", "reason": "bad password"})
    audit.flush()           # chain everything recorded so far (waits for the chain lock)
    audit.verify()          # VerifyResult(ok=True, count=…, pending=0, …)
    audit.head()            # (seq, hash): keep it elsewhere, pass back as expected_head

``record`` masks personal data first (:mod:`idp.audit.masking`) and stores the entry
durably with one insert in its own transaction, taking no lock; the entry is chained
moments later (:mod:`idp.audit.log`, :mod:`idp.audit.background`). ``verify``,
``export`` and ``head`` chain everything recorded before them first. The canonical form
that is hashed, and what the chain does and does not prove, are in
:mod:`idp.audit.chain`.
"""

from . import background  # noqa: F401 - registers the chaining pass that follows record()
from .chain import (
    FIELDS,
    ZERO_HASH,
    VerifyResult,
    canonical_bytes,
    compute_hash,
    export_line,
    walk,
)
from .log import (
    AuditError,
    Entry,
    Pending,
    chain_pending,
    export,
    flush,
    head,
    pending_count,
    record,
    verify,
)
from .masking import mask_details, mask_identifier
from .models import AuditEvent, AuditPending

__all__ = [
    "FIELDS",
    "ZERO_HASH",
    "AuditError",
    "AuditEvent",
    "AuditPending",
    "Entry",
    "Pending",
    "VerifyResult",
    "canonical_bytes",
    "chain_pending",
    "compute_hash",
    "export",
    "export_line",
    "flush",
    "head",
    "mask_details",
    "mask_identifier",
    "pending_count",
    "record",
    "verify",
    "walk",
]
