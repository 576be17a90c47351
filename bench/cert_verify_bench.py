"""Digital-certificate sign-in: how long verifying a citizen's SM2 certificate chain
takes (OpenSSL's X509_verify_cert through cffi, idp/crypto/x509_openssl.py), with and
without the CRL check, and whether memory stays flat over many verifications.

    .venv/bin/python bench/cert_verify_bench.py [--n 5000]

The SM2 PKI (root → intermediate → citizen, plus a CRL) is made with the ``openssl``
command line, exactly as the tests make it (tests/integration/test_cert_login_sm2.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402

from idp.crypto import x509_openssl  # noqa: E402
from tests.integration.test_cert_login_sm2 import SM2PKI  # noqa: E402


def _rss_kib() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


def _ders(path: Path) -> list[bytes]:
    return [c.public_bytes(serialization.Encoding.DER)
            for c in x509.load_pem_x509_certificates(path.read_bytes())]


def _run(n: int, **kw) -> dict:
    times = []
    rss0 = _rss_kib()
    for _ in range(n):
        t = time.perf_counter()
        result = x509_openssl.verify(**kw)
        times.append((time.perf_counter() - t) * 1000)
    assert result.ok, result
    times.sort()
    return {"per_s": n / (sum(times) / 1000), "p50_ms": statistics.median(times),
            "p99_ms": times[int(n * 0.99) - 1],
            "rss_growth_kib": _rss_kib() - rss0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=5000)
    n = ap.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        pki = SM2PKI(Path(tmp))
        leaf = _ders(pki.issue("good.pem"))[0]
        root = _ders(pki.d / "root.pem")
        inter = _ders(pki.d / "inter.pem")
        crls = [x509.load_pem_x509_crl(pki.crl(ca, f"{ca}.crl"))
                .public_bytes(serialization.Encoding.DER) for ca in ("inter", "root")]
        _run(50, leaf=leaf, roots=root, untrusted=inter)  # warm up
        print(f"SM2 chain (root → intermediate → citizen), {n} verifications each")
        for label, kw in (("chain", {}), ("chain + CRLs", {"crls": crls})):
            r = _run(n, leaf=leaf, roots=root, untrusted=inter, **kw)
            print(f"  {label:14} {r['per_s']:8.0f}/s  p50 {r['p50_ms']:.2f} ms  "
                  f"p99 {r['p99_ms']:.2f} ms  RSS growth {r['rss_growth_kib']:.0f} KiB")


if __name__ == "__main__":
    main()
