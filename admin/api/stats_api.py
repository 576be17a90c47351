"""The dashboard's figures through the API."""

from __future__ import annotations

from idp import audit

from .. import stats
from .spec import endpoint


@endpoint("get", "/dashboard", summary="Sign-ins per hour by channel and level, outcomes, "
          "tokens by grant, sessions, review backlog and throughput, import runs",
          permission="dashboard.read", tag="dashboard", out=stats.Dashboard)
def dashboard():
    audit.flush()
    return stats.build()
