"""The dashboard: figures server-rendered from what the provider records (admin.stats),
drawn by the vendored Chart.js (admin/static/vendor, served from this site only). Each
chart has its numbers in a table too, for screen readers and for pages without script."""

from __future__ import annotations

import datetime as dt

from flask import get_flashed_messages, render_template

from idp import audit

from .. import auth, stats
from ..views import CST, bp


@bp.get("/dashboard")
@auth.require("dashboard.read")
def dashboard():
    audit.flush()
    dash = stats.build()
    hours = [dt.datetime.fromtimestamp(h, CST).strftime("%H:00") for h in dash.hours]
    days = [dt.datetime.fromtimestamp(d, CST).strftime("%m-%d") for d in dash.days]
    success = sum(sum(s.values) for s in dash.outcomes if s.name == "success")
    return render_template("admin/dashboard.html", d=dash, hours=hours, days=days,
                           success_24h=success,
                           notices=get_flashed_messages())
