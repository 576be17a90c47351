"""Authentication: who the person is, how strongly, and the SSO session that remembers it."""
