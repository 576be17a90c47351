"""Validation errors shared by every identifier parser in :mod:`idp.identity`.

Why a dedicated hierarchy instead of bare ``ValueError``: the login and
registration pages must tell a citizen *exactly* what is wrong with what they
typed (in Chinese, with an English fallback for the API), while callers that
only care about "valid or not" can still catch ``ValueError``.  Every error
therefore carries a stable machine-readable ``code`` that front-ends and API
clients can switch on, never on the human text.

None of the messages ever echoes the whole input back: these errors end up in
logs, and the input is personal data.
"""

from __future__ import annotations


class InvalidIdentifier(ValueError):
    """Base class: the text is not a valid identifier of the expected kind.

    Attributes:
        code: machine-readable reason, e.g. ``"length"`` or ``"check_digit"``.
        message: the reason in Chinese, for end users.
        message_en: the same reason in English, for API clients and operators.
        expected: for ``"check_digit"`` / ``"org_code_check"`` errors, the
            check character the number should have ended with; else ``None``.
        position: 1-based position of the offending character, when known.
    """

    def __init__(
        self,
        code: str,
        message: str,
        message_en: str,
        *,
        expected: str | None = None,
        position: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.message_en = message_en
        self.expected = expected
        self.position = position

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message_en={self.message_en!r})"

    def one_line(self) -> str:
        """Both messages on a single line (for CLI output and log lines)."""
        return f"{self.message} / {self.message_en}"


class InvalidIdNumber(InvalidIdentifier):
    """A citizen / residence-permit / foreigner permanent-residence ID number is invalid."""


class InvalidCreditCode(InvalidIdentifier):
    """A unified social credit code (GB 32100) is invalid."""


class InvalidOrgCode(InvalidCreditCode):
    """A legacy organisation code (GB 11714) is invalid.

    A subclass of :class:`InvalidCreditCode` because the organisation code is
    part of every credit code and importers handle both in one place.
    """


class InvalidPhone(InvalidIdentifier):
    """A mainland mobile phone number is invalid."""


def describe_char(char: str) -> str:
    """Render one offending character safely for a one-line message.

    Non-printable characters (controls, line separators, ...) are shown as
    ``U+XXXX`` so that an error message can never break a log line or a
    terminal.
    """
    if char.isprintable() and not char.isspace():
        return char
    return f"U+{ord(char):04X}"
