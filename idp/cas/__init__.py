"""CAS protocol 3.0 server under ``/cas``, on the same SSO session and sign-in
interaction as OpenID Connect. The blueprint is in :mod:`idp.cas.views`; this package
itself imports nothing, so :mod:`idp.clients` can use :mod:`idp.cas.services`."""
