"""The account area (``/account``): a person's own page, and the enterprise pages where a
legal representative or administrator sees the organisation's members, appoints and
revokes them, and reads who signed in for the organisation."""

from .views import bp

__all__ = ["bp"]
