"""ID tokens signed (and verified) per second with SM2SM3, ES256 and RS256.

Runs in one process on the provider's own signing path (``idp.oidc.tokens.sign``,
keys from the key ring, joserfc), so the figures include JOSE encoding, not just the
curve arithmetic. Usage: ``.venv/bin/python bench/token_bench.py [--seconds 3]``.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time

from joserfc import jwt


def _rate(fn, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    end = start + seconds
    while time.perf_counter() < end:
        for _ in range(20):
            fn()
        n += 20
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()

    from idp import create_app
    from idp.bootstrap import initialise
    from idp.oidc.tokens import keyring, sign

    app = create_app({"ISSUER": "https://id.example.gov.cn"},
                     instance_path=tempfile.mkdtemp(prefix="idp-bench-"))
    with app.app_context():
        initialise()
        now = int(time.time())
        claims = {"iss": "https://id.example.gov.cn", "sub": secrets.token_hex(16),
                  "aud": ["gov-portal"], "iat": now, "exp": now + 3600, "auth_time": now,
                  "nonce": "n", "acr": "L3", "amr": ["pwd"], "sid": "s",
                  "at_hash": "x" * 22, "name": "张三", "id_number_masked": "110105********1239"}
        public = keyring().public_keys()
        rows = []
        for alg in ("SM2SM3", "ES256", "RS256"):
            token = sign(claims, alg)
            sign_rate = _rate(lambda a=alg: sign(claims, a), args.seconds)
            verify_rate = _rate(lambda t=token, a=alg: jwt.decode(t, public, algorithms=[a]),
                                args.seconds)
            rows.append((alg, sign_rate, verify_rate))
    base = {alg: (s, v) for alg, s, v in rows}
    print(f"{'alg':8} {'ID tokens signed/s':>19} {'verified/s':>11} "
          f"{'sign vs ES256':>14} {'sign vs RS256':>14}")
    for alg, s, v in rows:
        print(f"{alg:8} {s:19.0f} {v:11.0f} {s / base['ES256'][0]:13.2f}x "
              f"{s / base['RS256'][0]:13.2f}x")
    print("(one process, one core; includes JOSE encoding and claims serialisation)")


if __name__ == "__main__":
    main()
