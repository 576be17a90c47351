"""The account area (``/account``): a person's own page — password, phone, where they are
signed in, their sign-in history, connected applications, closing the account,
registering an enterprise — and the enterprise pages where a legal representative or
administrator sees the organisation's members, appoints and revokes them, and reads who
signed in for the organisation."""

from . import (  # noqa: F401 (routes)
    apps,
    closure_views,
    enterprise_registration,
    history,
    profile,
    sessions,
)
from .views import _scope_names, bp
from .words import channel, level, meaning, methods

# Levels explained in words on every page that names one (the home page too).
bp.add_app_template_global(level, "level_words")
bp.add_app_template_global(meaning, "level_meaning")
# An appointment's business scopes in words (the enterprise picker: not "all").
bp.add_app_template_global(_scope_names, "business_scope_words")
bp.add_app_template_global(methods, "method_words")  # amr: "密码、窗口现场核验", not "pwd, counter"
bp.add_app_template_global(channel, "channel_words")  # "政务服务大厅窗口", not "hall"

__all__ = ["bp"]
