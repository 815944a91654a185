"""The OAuth 2.1 authorization server, one issuer per integration, on Authlib's OAuth 2 server framework.

By endpoint: ``registration`` (RFC 7591), ``authorize`` (authorization endpoint, IdP login, consent),
``token`` (authorization code + PKCE S256, refresh with rotation), ``revoke`` (RFC 7009), ``metadata``
(RFC 8414); ``policy`` says what is allowed; ``framework`` adapts Authlib to Litestar; ``routes`` are
the HTTP handlers.
"""
