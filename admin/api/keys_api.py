"""Signing keys through the API (system administrator)."""

from __future__ import annotations

from typing import Literal

from flask import g
from pydantic import BaseModel

from idp.crypto.keys import SIGNING_ALGS

from .. import keys_view
from .spec import Strict, endpoint


class RotateKey(Strict):
    alg: Literal[SIGNING_ALGS]  # type: ignore[valid-type]


class Rotated(BaseModel):
    key: keys_view.KeyRow
    retired: list[str]


@endpoint("get", "/keys", summary="Signing keys and their states (active, retiring, retired)",
          permission="keys.read", tag="keys", out=list[keys_view.KeyRow])
def list_keys():
    return keys_view.listing()


@endpoint("post", "/keys/rotate", summary="A new active key for one algorithm; the previous "
          "one retires once its tokens have expired", permission="keys.write", tag="keys",
          body=RotateKey, out=Rotated)
def rotate_key(body: RotateKey):
    key, retired = keys_view.rotate(body.alg, actor=g.admin_id)
    return {"key": key, "retired": retired}
