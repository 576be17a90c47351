"""KEK rotation on a database of many people, timed, while a provider serves.

The same procedure as tests/resilience/test_kek_rotation.py (which runs it on 10 000
people inside the test run): a fresh PostgreSQL database provisioned under KEK A and
filled to ``--people`` persons, a provider (``idp serve``) redeployed with IDP_KEK=B and
IDP_KEK_PREVIOUS=A, then ``idp kek rotate`` as its own process, timed from outside, while
a client keeps calling /userinfo; afterwards a provider under B alone serves the token
issued before and a new password sign-in. Prints one JSON line.

    .venv/bin/python bench/kek_rotation_bench.py [--people 100000]

Needs PostgreSQL and Redis on 127.0.0.1 (scripts/services.sh).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    args = parser.parse_args()

    import requests

    from tests.e2e.conftest import LiveIdP, backend_env, free_port, running
    from tests.resilience import cli
    from tests.resilience.test_backup_restore import _refresh, _tokens
    from tests.resilience.test_kek_rotation import prepare

    old, new = secrets.token_hex(32), secrets.token_hex(32)
    tmp = Path(tempfile.mkdtemp(prefix="kek-bench-"))
    with backend_env() as shared:
        shared["IDP_KEK"] = old

        def node(name: str, **env: str) -> LiveIdP:
            return LiveIdP(port=free_port(), issuer="http://127.0.0.1:9/kek-bench",
                           shared_env={**shared, **env}, instance_path=tmp / name)

        t0 = time.monotonic()
        secret = prepare(node("old").env, args.people)
        filled = time.monotonic() - t0
        rotating = node("rotating", IDP_KEK=new, IDP_KEK_PREVIOUS=old)
        answers: list[int] = []
        with running(rotating):
            before = _tokens(rotating, secret)
            stop = threading.Event()

            def load() -> None:
                while not stop.is_set():
                    answers.append(requests.get(rotating.url("/userinfo"), timeout=10, headers={
                        "Authorization": "Bearer " + before["access_token"]}).status_code)

            client = threading.Thread(target=load, daemon=True)
            client.start()
            started = time.monotonic()
            out = rotating.run_cli("kek", "rotate")
            took = time.monotonic() - started
            stop.set()
            client.join(15)
        under_new = node("new", IDP_KEK=new)
        with running(under_new):
            refreshed = _refresh(under_new, secret, before["refresh_token"]).status_code
            signed_in = bool(_tokens(under_new, secret)["id_token"])
        status = cli.run(under_new.env, "kek", "status")
    print(json.dumps({
        "people": args.people, "fill_seconds": round(filled, 1),
        "rewrapped": out["rewrapped"], "rotate_seconds_in_database": out["seconds"],
        "rotate_command_seconds": round(took, 2), "state_after": status["state"],
        "userinfo_during_rotation": {str(s): answers.count(s) for s in sorted(set(answers))},
        "refresh_after_under_new_kek": refreshed, "sign_in_after_under_new_kek": signed_in,
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
