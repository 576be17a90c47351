"""Cryptography: signing keys, SM2/SM3/SM4, password hashing."""
