"""The sign-in interaction every protocol shares.

A relying party's request — OIDC today, CAS and SAML beside it — becomes one typed
:class:`~.request.PendingRequest`. An ordered list of small named checks
(:mod:`.checks`) each answers "satisfied" or "the person must visit page X"; the
protocol's adapter turns the answer into its own response (a redirect to that page, or
``login_required`` under ``prompt=none``, CAS ``gateway``, SAML ``IsPassive``) and,
when every check is satisfied, issues what the protocol issues. A new rule is one
check; a new protocol is one adapter. node-oidc-provider's interaction policy is the
model.
"""

from .context import Context, Needed, Refused
from .request import PendingRequest, browser_id, expired_page, from_page, load
from .run import Completion, complete, evaluate

__all__ = ["Completion", "Context", "Needed", "PendingRequest", "Refused", "browser_id", "complete",
           "evaluate", "expired_page", "from_page", "load"]
