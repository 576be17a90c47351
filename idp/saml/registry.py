"""SAML service providers: registered from their metadata, found by entity ID."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

from ..clients import ClientError, find_client, register_client
from ..extensions import db
from ..models import Client
from ..oidc.safe_fetch import FetchError, fetch
from . import metadata_import
from .metadata_import import MetadataError
from .server import xmlsec_binary

_CACHE_SECONDS = 5.0
_by_entity: dict[str, tuple[float, str | None]] = {}


def fetch_metadata(source: str) -> bytes:
    """A file's bytes, or a URL's (https, or http on loopback only).

    An operator names the URL, so an address inside the network is allowed; the fetch
    is still the guarded one jwks_uri uses: one checked address, no redirects, a size
    cap and one overall deadline, so a slow or huge answer cannot hang the command."""
    if source.startswith(("https://", "http://")):
        metadata_import._check_url(source, "metadata URL")
        try:
            return fetch(source, timeout=10, max_bytes=metadata_import.MAX_BYTES,
                         allow_private=True,
                         headers={"Accept": "application/samlmetadata+xml, application/xml"})
        except FetchError as exc:
            raise MetadataError(f"cannot fetch metadata: {exc}") from None
    try:
        with open(source, "rb") as fh:
            return fh.read(metadata_import.MAX_BYTES + 1)
    except OSError as exc:
        raise MetadataError(f"cannot read metadata file: {exc.strerror}") from None


def _slug(entity_id: str) -> str:
    parts = urlsplit(entity_id)
    base = (parts.hostname or "") + (parts.path or "")
    return "saml-" + (re.sub(r"[^A-Za-z0-9]+", "-", base or entity_id).strip("-")[:100] or "sp")


def register_sp(xml: bytes, *, client_id: str | None = None, name: str | None = None,
                first_party: bool = False, sensitive_scopes: list[str] | None = None,
                min_level: str | None = None, scopes: list[str] | None = None,
                trusted_cert_pem: str | None = None,
                require_signed_requests: bool = False) -> Client:
    meta = metadata_import.parse(xml, trusted_cert_pem=trusted_cert_pem,
                                 xmlsec_binary=xmlsec_binary())
    if _owner(meta["entity_id"]) is not None:
        raise ClientError(f"a service provider with entityID {meta['entity_id']!r} is "
                          "already registered")
    if require_signed_requests:
        if not meta["saml_signing_certs"]:
            raise ClientError("--require-signed-requests needs a signing key in the metadata")
        meta["saml_authn_requests_signed"] = True
    # The persistent NameID is pairwise per SP, like a pairwise ``sub`` per sector.
    meta["sector"] = meta["entity_id"]
    row = register_client(client_id=client_id or _slug(meta["entity_id"]),
                          name=name or meta["entity_id"], protocol="saml",
                          first_party=first_party, sensitive_scopes=sensitive_scopes or [],
                          min_level=min_level, subject_type="pairwise", protocol_meta=meta,
                          scopes=scopes)
    _by_entity[meta["entity_id"]] = (time.monotonic() + _CACHE_SECONDS, row.client_id)
    return row


def _owner(entity_id: str) -> str | None:
    """The client id registered with this entity ID, from the database. A scan: SAML
    SPs are few (tens, not millions) and the answer is cached a few seconds."""
    for cid, meta in db.session.execute(db.select(Client.client_id, Client.client_metadata)):
        if (meta or {}).get("protocol") == "saml" and meta.get("entity_id") == entity_id:
            return cid
    return None


def sp_by_entity(entity_id: str | None) -> Client | None:
    """The registered, active SAML client with this entity ID."""
    if not entity_id or not isinstance(entity_id, str) or len(entity_id) > 1024:
        return None
    now = time.monotonic()
    hit = _by_entity.get(entity_id)
    if hit is None or hit[0] <= now:
        if len(_by_entity) > 10_000:
            _by_entity.clear()
        hit = (now + _CACHE_SECONDS, _owner(entity_id))
        _by_entity[entity_id] = hit
    client = find_client(hit[1]) if hit[1] else None
    if client is None or client.protocol != "saml" or client.status != "active":
        return None
    return client
