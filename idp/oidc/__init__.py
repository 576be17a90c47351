"""OpenID Connect and OAuth 2.0 on Authlib's authorization server."""
