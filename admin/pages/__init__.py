"""The console's pages beyond the review queue, one module per area, all on the
``admin`` blueprint (:mod:`admin.views`): people and roles, relying parties, audit log,
keys, dashboard, API credentials. Each calls the same services as the API."""

from . import api_clients, audit_log, clients, dashboard, keys, people  # noqa: F401
