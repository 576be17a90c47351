"""``idp client add --protocol saml --metadata FILE|URL``: the SAML options of the one
``client add`` command, added by a decorator so the command's own signature stays as it
is; a SAML registration is handled here entirely."""

from __future__ import annotations

import functools

import click

_KEY = "idp.saml"


def _keep(ctx, param, value):
    ctx.meta.setdefault(_KEY, {})[param.name] = value
    return value


OPTIONS = (
    click.Option(["--metadata"], default=None, expose_value=False, callback=_keep,
                 help="SAML: the service provider's metadata, a file or an https URL."),
    click.Option(["--metadata-cert"], default=None, expose_value=False, callback=_keep,
                 type=click.Path(exists=True, dir_okay=False),
                 help="SAML: PEM certificate the metadata must be signed with."),
    click.Option(["--require-signed-requests"], is_flag=True, expose_value=False,
                 callback=_keep,
                 help="SAML: refuse unsigned AuthnRequests even if the metadata does not ask."),
)


def saml_options(command_func):
    @functools.wraps(command_func)
    def wrapper(*args, **kwargs):
        opts = click.get_current_context().meta.get(_KEY, {})
        if kwargs.get("protocol") == "saml" or any(opts.values()):
            return add_sp(kwargs, **opts)
        return command_func(*args, **kwargs)

    wrapper.__click_params__ = [*getattr(command_func, "__click_params__", []), *OPTIONS]
    return wrapper


def add_sp(kwargs: dict, *, metadata=None, metadata_cert=None,
           require_signed_requests=False) -> None:
    from .. import audit
    from ..cli.common import app_context, emit, fail, operator
    from ..clients import ClientError
    from .metadata_import import MetadataError
    from .registry import fetch_metadata, register_sp

    as_json = kwargs.get("as_json", False)
    if kwargs.get("protocol") != "saml":
        fail("--metadata, --metadata-cert and --require-signed-requests are for "
             "--protocol saml", as_json)
    if not metadata:
        fail("a SAML service provider needs --metadata FILE|URL", as_json)
    oauth_only = [name for name in ("redirect_uris", "grant_types", "post_logout", "services",
                                    "jwks_file", "secret") if kwargs.get(name)]
    if oauth_only or kwargs.get("backchannel_logout_uri") or kwargs.get("public"):
        fail("OAuth/CAS options do not apply to a SAML service provider "
             "(its endpoints and keys come from --metadata)", as_json)
    cert_pem = None
    if metadata_cert:
        try:
            with open(metadata_cert, encoding="ascii") as fh:
                cert_pem = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read --metadata-cert: {exc}", as_json)
    with app_context():
        try:
            row = register_sp(fetch_metadata(metadata), client_id=kwargs["client_id"],
                              name=kwargs.get("name"), first_party=kwargs.get("first_party"),
                              sensitive_scopes=list(kwargs.get("allow_scopes") or []),
                              min_level=kwargs.get("min_level"), trusted_cert_pem=cert_pem,
                              scopes=list(kwargs.get("release_scopes") or []) or None,
                              require_signed_requests=require_signed_requests)
        except (ClientError, MetadataError) as exc:
            fail(str(exc), as_json)
        meta = row.client_metadata
        out = {"client_id": row.client_id, "protocol": "saml", "entity_id": meta["entity_id"],
               "assertion_consumer_services": [e["location"] for e in meta["saml_acs"]],
               "authn_requests_signed": meta["saml_authn_requests_signed"],
               "encrypted_assertions": bool(meta["saml_encryption_certs"]),
               "min_level": meta.get("min_level"), "scope": meta.get("scope"),
               "sensitive_scopes": row.allowed_sensitive_scopes}
        audit.record("admin.client.add", actor=operator(), client_id=row.client_id,
                     details={"protocol": "saml", "entity_id": meta["entity_id"],
                              "acs": out["assertion_consumer_services"],
                              "sensitive_scopes": row.allowed_sensitive_scopes,
                              "metadata_signed": cert_pem is not None})
    emit(out, as_json, "\n".join(f"{k}: {v}" for k, v in out.items() if v not in (None, [])))
