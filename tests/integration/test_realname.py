"""Real-name verification's configuration: the dev verifier, which passes anyone who
types their own account's details, is never what a production deployment gets by
default."""

from __future__ import annotations

import pytest

from idp.authn import realname
from tests.helpers import CITIZEN_ID


@pytest.fixture
def production_like(ctx):
    """Neither the embedded default nor a test run; settings restored afterwards."""
    saved = {k: ctx.config.get(k) for k in ("EMBEDDED", "TESTING", "REALNAME_VERIFIER")}
    ctx.config.update(EMBEDDED=False, TESTING=False)
    ctx.extensions.pop("idp.plugin.REALNAME_VERIFIER", None)
    yield ctx.config
    ctx.config.update(saved)
    ctx.extensions.pop("idp.plugin.REALNAME_VERIFIER", None)


def test_no_verifier_configured_outside_the_demo_raises_nobody(ctx, person, production_like):
    production_like["REALNAME_VERIFIER"] = None
    result = realname.verify_person(person, person.name, CITIZEN_ID)
    assert (result.ok, result.reason) == (False, "unavailable")
    assert person.assurance_level == "L2"


def test_dev_verifier_only_when_asked_for_or_in_the_demo(ctx, person, production_like):
    production_like["REALNAME_VERIFIER"] = "dev"
    assert isinstance(realname.verifier(), realname.DevVerifier)
    ctx.extensions.pop("idp.plugin.REALNAME_VERIFIER", None)
    production_like.update(REALNAME_VERIFIER=None, EMBEDDED=True)
    assert isinstance(realname.verifier(), realname.DevVerifier)
