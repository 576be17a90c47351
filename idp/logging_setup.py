"""Logging that never writes a citizen's ID number or phone number in clear.

Masking happens where records are born (the log-record factory), not in handlers,
so it covers every logger and every handler — ours, gunicorn's, a library's —
including ones configured after start-up."""

from __future__ import annotations

import logging

from .identity.masking import mask_record

_installed = False


def install_masking_filter() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def masked_record(*args, **kwargs) -> logging.LogRecord:
        record = make(*args, **kwargs)
        mask_record(record)
        return record

    logging.setLogRecordFactory(masked_record)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
