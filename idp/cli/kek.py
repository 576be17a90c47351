"""``idp kek status`` and ``idp kek rotate``: the key-encryption key's rotation.

To rotate without downtime (see :mod:`idp.crypto.envelope`):

1. configure every worker with the new key as ``IDP_KEK`` and the old one as
   ``IDP_KEK_PREVIOUS`` (a rolling restart; data keys under either are accepted);
2. ``idp kek rotate`` re-wraps the data keys under the new KEK (seconds, whatever the
   number of people; safe to run again after an interruption);
3. when ``idp kek status`` says complete, remove ``IDP_KEK_PREVIOUS`` (rolling restart).
"""

from __future__ import annotations

import click

from .common import app_context, emit, fail, operator


@click.group()
def kek() -> None:
    """Key-encryption key: envelope status and rotation."""


def _ring():
    from flask import current_app

    return current_app.extensions["idp.fieldcrypto"].ring


def _text(s: dict) -> str:
    prev = f", previous {s['previous_kek_id']}" if s["previous_kek_id"] else ""
    return (f"{s['state']}: KEK {s['kek_id']}{prev}; {s['data_keys']} data keys, "
            f"{s['pending']} still under another KEK")


@kek.command("status")
@click.option("--json", "as_json", is_flag=True)
def status_cmd(as_json: bool) -> None:
    """Where the data keys stand: under which KEK, and whether a rotation is pending."""
    from ..crypto.envelope import status

    with app_context():
        out = status(_ring())
    emit(out, as_json, _text(out))


@kek.command("rotate")
@click.option("--json", "as_json", is_flag=True)
def rotate_cmd(as_json: bool) -> None:
    """Re-wrap every data key under IDP_KEK (the provider keeps running)."""
    from ..crypto.envelope import UnknownKek, rotate

    with app_context():
        from .. import audit
        from ..crypto.fieldcrypt import DecryptionError

        ring = _ring()
        try:
            out = rotate(ring)
        except (UnknownKek, DecryptionError) as exc:
            fail(f"rotation stopped: {exc}", as_json)
        audit.record("kek.rotate", actor=operator(),
                     details={"kek_id": ring.current_id, "rewrapped": out["rewrapped"],
                              "previous_kek_id": ring.previous_id})
        audit.flush()
    emit(out, as_json, f"rotated {out['rewrapped']} data keys in {out['seconds']}s; "
                       + _text(out))
