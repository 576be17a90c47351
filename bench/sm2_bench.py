"""SM2 sign/verify throughput, in one run, on this machine:

* ``idp.crypto.sm2`` — the implementation in use (OpenSSL's libcrypto through cffi),
  signing and verifying a JWS-sized message (hash with cached Z included);
* ``openssl speed -seconds N sm2`` — OpenSSL's own C benchmark (``EVP_DigestSign``);
* ``gmssl`` 3.2.2 — pure Python, given a nonce from ``secrets`` so that it is fair (its
  default nonce comes from ``random``);
* ``gmssl-pyx`` — only if it happens to be importable (GmSSL in C; not a dependency).

Ours and ``openssl speed`` alternate over ``--rounds`` rounds (each gets
``--seconds / --rounds`` per measurement per round) and the median round is reported, so
that bursts of other load on the machine hit both alike. On a shared machine that still
leaves a few percent of noise, so the run ends with an in-process A/B: ours against
OpenSSL's own one-shot path (``EVP_DigestSignInit`` + ``EVP_DigestSign`` with the
distinguishing ID, i.e. the body of ``openssl speed``'s SM2 loop), on the same key,
alternating every 20 operations.

    .venv/bin/python bench/sm2_bench.py --seconds 5
"""

from __future__ import annotations

import argparse
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

MESSAGE = (
    b"eyJ0eXAiOiJKV1QiLCJhbGciOiJTTTJTTTMiLCJraWQiOiJzbTItMjAyNi0wMSJ9."
    b"eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmdvdi5jbiIsInN1YiI6IjExMDEwMTE5OTAwMzA3NzYz"
    b"OCIsImF1ZCI6ImNsaWVudC0xIiwiZXhwIjoxNzYzODAwMDAwLCJpYXQiOjE3NjM3OTY0MDAsIm5vbmNl"
    b"IjoibjAtUzZfV3pBMk1qIiwiYXV0aF90aW1lIjoxNzYzNzk2MzkwLCJhY3IiOiJ1cm46Y246aWRwOmxv"
    b"YTIifQ"
)


#: Divide by CPU time, as ``openssl speed`` does by default (its ``-elapsed`` switches to
#: wall-clock time); ``--elapsed`` switches both. CPU time is what stays comparable when
#: other processes compete for the cores.
CLOCK: Callable[[], float] = time.process_time


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn``, run for about ``seconds`` of wall time (after a short
    warm-up), per second of ``CLOCK``."""
    for _ in range(20):
        fn()
    count = 0
    deadline = time.perf_counter() + seconds
    start = CLOCK()
    while True:
        for _ in range(25):
            fn()
        count += 25
        if time.perf_counter() >= deadline:
            return count / (CLOCK() - start)


def bench_ours(seconds: float) -> tuple[float, float]:
    from idp.crypto import sm2

    key = sm2.generate_private_key()
    pub = key.public_key()
    signature = key.sign(MESSAGE)
    assert pub.verify(signature, MESSAGE)
    sign = rate(lambda: key.sign(MESSAGE), seconds)
    verify = rate(lambda: pub.verify(signature, MESSAGE), seconds)
    return sign, verify


def bench_openssl(seconds: int, elapsed: bool) -> tuple[float, float, str] | None:
    binary = shutil.which("openssl")
    if not binary:
        return None
    version = (
        subprocess.run([binary, "version", "-v"], capture_output=True, text=True)
        .stdout.split("(")[0]
        .strip()
    )
    out = subprocess.run(
        [binary, "speed", *(["-elapsed"] if elapsed else []), "-seconds", str(seconds), "sm2"],
        capture_output=True,
        text=True,
        timeout=4 * seconds + 120,
        stdin=subprocess.DEVNULL,
    )
    # " 256 bits SM2 (CurveSM2)   0.0004s   0.0004s   2760.3   2675.3"
    match = re.search(
        r"SM2 \(CurveSM2\)\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)\s+([\d.]+)", out.stdout + out.stderr
    )
    if not match:
        print(f"could not parse `openssl speed sm2` output:\n{out.stdout}{out.stderr}")
        return None
    return float(match.group(1)), float(match.group(2)), version


_EVP_CDEF = """
typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;
EVP_MD_CTX *EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(EVP_MD_CTX *ctx);
const EVP_MD *EVP_sm3(void);
EVP_PKEY_CTX *EVP_PKEY_CTX_new(EVP_PKEY *pkey, void *e);
int EVP_PKEY_CTX_set1_id(EVP_PKEY_CTX *ctx, const void *id, int len);
void EVP_MD_CTX_set_pkey_ctx(EVP_MD_CTX *ctx, EVP_PKEY_CTX *pctx);
int EVP_DigestSignInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type, void *e,
                       EVP_PKEY *pkey);
int EVP_DigestSign(EVP_MD_CTX *ctx, unsigned char *sigret, size_t *siglen,
                   const unsigned char *tbs, size_t tbslen);
int EVP_DigestVerifyInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type, void *e,
                         EVP_PKEY *pkey);
int EVP_DigestVerify(EVP_MD_CTX *ctx, const unsigned char *sigret, size_t siglen,
                     const unsigned char *tbs, size_t tbslen);
"""


def ab_against_openssl_c(seconds: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """((ours sign/s, C sign/s), (ours verify/s, C verify/s)), interleaved."""
    import cffi

    from idp.crypto import sm2

    ffi = cffi.FFI()
    ffi.cdef(_EVP_CDEF)
    lib = ffi.dlopen(sm2._library_name)
    key = sm2.generate_private_key()
    pub = key.public_key()
    # the very EVP_PKEYs our objects hold (benchmark-only peek at a private attribute)
    priv_pkey = ffi.cast("EVP_PKEY *", key._pkey)
    pub_pkey = ffi.cast("EVP_PKEY *", pub._pkey)
    md = lib.EVP_sm3()
    uid = sm2.DEFAULT_UID

    def md_ctx(pkey):
        ctx = ffi.gc(lib.EVP_MD_CTX_new(), lib.EVP_MD_CTX_free)
        pctx = lib.EVP_PKEY_CTX_new(pkey, ffi.NULL)  # owned by ctx from here on
        assert lib.EVP_PKEY_CTX_set1_id(pctx, uid, len(uid)) == 1
        lib.EVP_MD_CTX_set_pkey_ctx(ctx, pctx)
        return ctx

    sign_ctx, verify_ctx = md_ctx(priv_pkey), md_ctx(pub_pkey)
    out, out_len = ffi.new("unsigned char[]", 80), ffi.new("size_t *")

    def c_sign() -> None:  # what `openssl speed sm2` does per signature
        lib.EVP_DigestSignInit(sign_ctx, ffi.NULL, md, ffi.NULL, priv_pkey)
        out_len[0] = 80
        if lib.EVP_DigestSign(sign_ctx, out, out_len, MESSAGE, len(MESSAGE)) != 1:
            raise RuntimeError("EVP_DigestSign failed")

    c_sign()
    der = ffi.buffer(out, out_len[0])[:]
    assert pub.verify(sm2.signature_from_der(der), MESSAGE)

    def c_verify() -> None:
        lib.EVP_DigestVerifyInit(verify_ctx, ffi.NULL, md, ffi.NULL, pub_pkey)
        if lib.EVP_DigestVerify(verify_ctx, der, len(der), MESSAGE, len(MESSAGE)) != 1:
            raise RuntimeError("EVP_DigestVerify failed")

    signature = key.sign(MESSAGE)

    def ours_verify() -> None:
        if not pub.verify(signature, MESSAGE):
            raise RuntimeError("verify failed")

    def interleave(a: Callable[[], object], b: Callable[[], object]) -> tuple[float, float]:
        spent_a = spent_b = 0.0
        count = 0
        deadline = time.perf_counter() + 2 * seconds
        while time.perf_counter() < deadline:
            t0 = CLOCK()
            for _ in range(20):
                a()
            t1 = CLOCK()
            for _ in range(20):
                b()
            t2 = CLOCK()
            spent_a += t1 - t0
            spent_b += t2 - t1
            count += 20
        return count / spent_a, count / spent_b

    return interleave(lambda: key.sign(MESSAGE), c_sign), interleave(ours_verify, c_verify)


def bench_gmssl(seconds: float) -> tuple[float, float, str] | None:
    try:
        from importlib.metadata import version

        from gmssl import sm2 as gsm2
    except ImportError:
        return None
    from idp.crypto import sm2

    # gmssl's ``lstrip('04')`` corrupts public keys whose hex starts with 0 or 4: pick
    # a key it can read (it does not change the speed).
    while True:
        ours = sm2.generate_private_key()
        xy = ours.public_key().encoded_point()[1:].hex()
        if xy[0] not in "04":
            break
    crypt = gsm2.CryptSM2(private_key=f"{ours.private_value():064x}", public_key="04" + xy)

    def nonce() -> str:
        return f"{1 + secrets.randbelow(sm2.N - 1):064x}"

    signature = crypt.sign_with_sm3(MESSAGE, nonce())
    # cross-check: both implementations accept each other's signatures
    assert ours.public_key().verify(bytes.fromhex(signature), MESSAGE)
    assert crypt.verify_with_sm3(ours.sign(MESSAGE).hex(), MESSAGE)
    sign = rate(lambda: crypt.sign_with_sm3(MESSAGE, nonce()), seconds)
    verify = rate(lambda: crypt.verify_with_sm3(signature, MESSAGE), seconds)
    return sign, verify, f"gmssl {version('gmssl')} (pure Python)"


def bench_gmssl_pyx(seconds: float) -> tuple[float, float, str] | None:
    try:
        import gmssl_pyx
    except ImportError:
        return None
    from idp.crypto import sm2
    from idp.crypto.sm3 import sm3_new

    public, private = gmssl_pyx.sm2_key_generate()
    pub = sm2.SM2PublicKey.from_encoded_point(b"\x04" + public)
    z_hash = sm3_new(pub.z())  # Z once per key, as ours does

    def digest() -> bytes:
        h = z_hash.copy()
        h.update(MESSAGE)
        return h.digest()

    der = gmssl_pyx.sm2_sign_sm3_digest(private, digest())
    assert pub.verify(sm2.signature_from_der(der), MESSAGE)
    sign = rate(lambda: gmssl_pyx.sm2_sign_sm3_digest(private, digest()), seconds)
    verify = rate(lambda: gmssl_pyx.sm2_verify_sm3_digest(public, digest(), der), seconds)
    return sign, verify, f"gmssl-pyx {gmssl_pyx.__version__} (GmSSL C, not constant-time)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        type=int,
        default=5,
        help="seconds per measurement (sign, verify) and implementation, split over the "
        "rounds, at least 1 per round (default 5)",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternating ours/openssl rounds (default 5)"
    )
    parser.add_argument(
        "--elapsed", action="store_true", help="divide by wall-clock time instead of CPU time"
    )
    parser.add_argument("--no-gmssl", action="store_true", help="skip the pure-Python gmssl")
    args = parser.parse_args(argv)
    global CLOCK
    if args.elapsed:
        CLOCK = time.perf_counter
    rounds = max(1, args.rounds)
    per_round = max(1, round(max(1, args.seconds) / rounds))

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from idp.crypto import sm2

    print(
        f"libcrypto in use: {sm2.openssl_version()}; "
        f"{rounds} rounds x {per_round}s per measurement; "
        f"per second of {'wall-clock' if args.elapsed else 'CPU'} time",
        flush=True,
    )
    ours_rounds: list[tuple[float, float]] = []
    speed_rounds: list[tuple[float, float]] = []
    speed_version = ""
    for _ in range(rounds):
        ours_rounds.append(bench_ours(per_round))
        speed = bench_openssl(per_round, args.elapsed)
        if speed:
            speed_rounds.append(speed[:2])
            speed_version = speed[2]

    def median(values: list[tuple[float, float]]) -> tuple[float, float]:
        return statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)

    def spread(values: list[tuple[float, float]], i: int) -> str:
        return "/".join(f"{v[i]:.0f}" for v in values)

    ours = median(ours_rounds)
    rows: list[tuple[str, float, float]] = [("idp.crypto.sm2 (OpenSSL EVP via cffi)", *ours)]
    openssl = median(speed_rounds) if speed_rounds else None
    if openssl:
        rows.append((f"openssl speed sm2 ({speed_version})", *openssl))
    seconds = rounds * per_round
    ab_sign, ab_verify = ab_against_openssl_c(seconds / 2)
    rows.append(("  in-process A/B: ours", ab_sign[0], ab_verify[0]))
    rows.append(("  in-process A/B: OpenSSL EVP_DigestSign/Verify", ab_sign[1], ab_verify[1]))
    gm = None if args.no_gmssl else bench_gmssl(seconds)
    if gm:
        rows.append((gm[2], gm[0], gm[1]))
    pyx = bench_gmssl_pyx(seconds)
    if pyx:
        rows.append((pyx[2], pyx[0], pyx[1]))

    width = max(len(name) for name, _, _ in rows)
    print(f"{'implementation':<{width}}  {'sign/s':>9}  {'verify/s':>9}")
    for name, sign, verify in rows:
        print(f"{name:<{width}}  {sign:>9.1f}  {verify:>9.1f}")
    print()
    print(f"rounds, ours:    sign {spread(ours_rounds, 0)}  verify {spread(ours_rounds, 1)}")
    if openssl:
        print(f"rounds, openssl: sign {spread(speed_rounds, 0)}  verify {spread(speed_rounds, 1)}")
        print(
            f"ours/openssl (openssl speed):   sign {ours[0] / openssl[0]:.3f}x, "
            f"verify {ours[1] / openssl[1]:.3f}x"
        )
    else:
        print("ours/openssl (openssl speed):   n/a (no openssl binary, or unparsable output)")
    print(
        f"ours/openssl (in-process A/B):  sign {ab_sign[0] / ab_sign[1]:.3f}x, "
        f"verify {ab_verify[0] / ab_verify[1]:.3f}x"
    )
    if gm:
        print(
            f"ours/gmssl:                     sign {ours[0] / gm[0]:.1f}x, "
            f"verify {ours[1] / gm[1]:.1f}x"
        )
    if pyx:
        print(
            f"ours/gmssl-pyx:                 sign {ours[0] / pyx[0]:.2f}x, "
            f"verify {ours[1] / pyx[1]:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
