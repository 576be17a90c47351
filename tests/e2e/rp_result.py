"""Reading the result the Node clients print (rp_flow.mjs, device_flow.mjs, ciba_flow.mjs;
run by node_script.NodeScript): each step's outcome, with the provider's log attached to
every failure message."""

from __future__ import annotations

import json


def explain(result: dict, what: str) -> str:
    shown = {k: v for k, v in result.items() if k != "_server_log"}
    return (f"{what}\n--- openid-client result ---\n"
            f"{json.dumps(shown, ensure_ascii=False, indent=1)}\n--- provider log ---\n"
            f"{result.get('_server_log', '')}")


def ok(result: dict, step: str) -> dict:
    s = result["steps"].get(step)
    assert s is not None, explain(result, f"step {step!r} never ran")
    assert s["outcome"] == "ok", explain(result, f"step {step!r} failed: {s.get('error')}")
    return s


def refused(result: dict, step: str, error: str, status: int | None = None,
            error_name: str | None = None) -> dict:
    """The step failed with OAuth error ``error`` (and HTTP ``status``; and, when given,
    openid-client's error class ``error_name``, e.g. OPError for a provider's answer)."""
    s = result["steps"].get(step)
    assert s is not None, explain(result, f"step {step!r} never ran")
    assert s["outcome"] == "error", explain(result, f"step {step!r} should have failed")
    if error_name is not None:
        assert s["error"].get("name") == error_name, explain(result, f"{step}: not {error_name}")
    assert s["error"].get("error") == error, explain(result, f"{step}: wrong error")
    if status is not None:
        assert s["error"].get("status") == status, explain(result, f"{step}: wrong status")
    return s
