"""Message catalogues. Source strings are Chinese (zh-CN first); ``en`` translates them.

The .po files are the source of truth; the .mo files are built from them at start-up
when missing or older, so a checkout never runs with stale translations."""

from __future__ import annotations

import os

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po


def compile_catalogs(directory: str) -> None:
    for lang in os.listdir(directory):
        folder = os.path.join(directory, lang, "LC_MESSAGES")
        po = os.path.join(folder, "messages.po")
        mo = os.path.join(folder, "messages.mo")
        if not os.path.exists(po):
            continue
        if os.path.exists(mo) and os.path.getmtime(mo) >= os.path.getmtime(po):
            continue
        with open(po, "rb") as fh:
            catalog = read_po(fh, locale=lang)
        tmp = f"{mo}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            write_mo(fh, catalog)
        os.replace(tmp, mo)
