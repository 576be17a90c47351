"""Normalise identifiers as people actually type them.

Users paste ID numbers from Word documents, type them with a Chinese input
method switched to full-width mode, group them with spaces or hyphens, or
write the check character as a lower-case ``x``.  All of those are the *same*
number, and rejecting them would just push people to the help desk.  So every
parser in this package first runs the input through :func:`normalize_identifier`
and only then validates the canonical form.

Deliberately *not* done: Unicode NFKC normalisation and ``str.upper()`` on
arbitrary text.  Both map many exotic characters onto ASCII letters (the
ligature ``ﬀ`` becomes ``FF``, ``ß`` becomes ``SS``), which would let look-alike
garbage validate.  We only fold the full-width ASCII block, which is what
Chinese input methods actually produce.
"""

from __future__ import annotations

# The full-width ASCII block U+FF01..U+FF5E ("！".."～") sits exactly 0xFEE0
# above ASCII 0x21..0x7E.  Besides the digits and letters (U+FF10..U+FF5A)
# it holds the "＋" of "＋８６" and the full-width hyphen-minus.
_FULLWIDTH_OFFSET = 0xFEE0
_FULLWIDTH_FIRST = 0xFF01
_FULLWIDTH_LAST = 0xFF5E

#: Characters that only ever separate groups of an identifier.  Besides ASCII
#: white space this covers the ideographic space U+3000 and NBSP (both
#: ``str.isspace``) and the invisible characters that copy-paste from web
#: pages and office documents leaves behind.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"

#: Hyphen look-alikes people use to group digits ("110105-19491231-002X",
#: "138-0000-0000", "12345678-9").  None of the identifiers handled here
#: contains a hyphen as data, so removing them is always safe.
HYPHENS = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"

_TRANSLATION: dict[int, int | None] = {
    code: code - _FULLWIDTH_OFFSET for code in range(_FULLWIDTH_FIRST, _FULLWIDTH_LAST + 1)
}
# ASCII-only upper-casing (see the module docstring for why not str.upper()).
_TRANSLATION.update({code: code - 32 for code in range(ord("a"), ord("z") + 1)})
# Full-width lower-case letters fold straight to ASCII upper case.
_TRANSLATION.update({code: code - _FULLWIDTH_OFFSET - 32 for code in range(0xFF41, 0xFF5A + 1)})
_TRANSLATION.update({ord(c): None for c in _INVISIBLE + HYPHENS})


def normalize_identifier(text: str) -> str:
    """Return the canonical form of a user-typed identifier.

    Full-width characters become ASCII, ASCII letters become upper case, and
    white space (including U+3000), zero-width characters and hyphens/dashes
    are removed.  Anything else is left in place so that the validator can
    point at it precisely.

    >>> normalize_identifier(" １１０１０５ 19491231-002ｘ ")
    '11010519491231002X'
    """
    folded = text.translate(_TRANSLATION)
    if any(c.isspace() for c in folded):
        folded = "".join(c for c in folded if not c.isspace())
    return folded
