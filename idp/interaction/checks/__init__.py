"""The checks, in the order they run: each one file, each one rule.

A check is a callable taking the :class:`~idp.interaction.context.Context` and returning
None when its rule is satisfied, a :class:`~idp.interaction.context.Needed` naming the page
that satisfies it, or a :class:`~idp.interaction.context.Refused` that ends the request.
Order matters: a decision the person already made (said no) ends the request before
anything else is asked; registering (``prompt=create``) comes before signing in;
signing in before its level; the level before consent (consent is given by the person
the level vouches for); the organisation last.
"""

from .consent import consent, consent_denied
from .enterprise import enterprise
from .level import level
from .login import prompt_login
from .max_age import max_age
from .registration import registration
from .session import session

DEFAULT = (consent_denied, registration, session, prompt_login, max_age, level, consent, enterprise)

__all__ = ["DEFAULT", "consent", "consent_denied", "enterprise", "level", "max_age",
           "prompt_login", "registration", "session"]
