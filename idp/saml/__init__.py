"""SAML 2.0 identity provider on the same session and sign-in interaction as OIDC and CAS
(metadata at ``/saml/metadata``; see :mod:`idp.saml.server` for the choice of pysaml2)."""


def init_app(app) -> None:
    from .views import bp

    app.register_blueprint(bp)
