"""The account area (``/account``): a person's own page — password, phone, where they are
signed in, their sign-in history, connected applications, closing the account,
registering an enterprise — and the enterprise pages where a legal representative or
administrator sees the organisation's members, appoints and revokes them, and reads who
signed in for the organisation."""

from . import (  # noqa: F401 (routes)
    apps,
    closure_views,
    enterprise_registration,
    history,
    profile,
    sessions,
)
from .views import bp

__all__ = ["bp"]
