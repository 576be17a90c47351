"""SAML 2.0 identity provider on the same session and sign-in interaction as OIDC and CAS
(metadata at ``/saml/metadata``; see :mod:`idp.saml.server` for the choice of pysaml2)."""

import logging
import warnings

from cryptography.utils import CryptographyDeprecationWarning

# pysaml2 logs every schema it loads at INFO and, on import, warns that a cipher mode it
# offers (CFB, never used here) has moved in cryptography. Neither says anything to an
# operator, and both would land on the stderr of every `idp` command, where scripts read
# one line of JSON.
logging.getLogger("xmlschema").setLevel(logging.WARNING)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    import saml2.cryptography.symmetric  # noqa: F401


def init_app(app) -> None:
    from .views import bp

    app.register_blueprint(bp)
