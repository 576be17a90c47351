"""Error pages people can read: what happened and what to do, in their language
(``ui_locales`` of the request counts, as on every other page), with a protocol's error
code kept only as a detail for the help desk or the relying party's developers — never
the protocol's English description on a Chinese page.

Used by the app's HTTP error handlers (404, 405, 413, 429…) and by the authorization
endpoint when an error cannot be sent back to the relying party (RFC 6749 §4.1.2.1).
"""

from __future__ import annotations

from flask import render_template, request
from flask_babel import lazy_gettext as _l
from flask_babel import refresh

from .ui import pick_locale_from

# OAuth 2.0 / OpenID Connect error codes (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6 and the
# codes our endpoints add) -> (what happened, what to do).
_OAUTH = {
    "invalid_client": (_l("发起登录的网站或应用未在本平台登记，或已停用。"),
                       _l("请回到原网站重新进入；如仍不行，请联系该网站的客服。")),
    "unauthorized_client": (_l("发起登录的网站或应用无权使用这种登录方式。"),
                            _l("请联系该网站的客服。")),
    "unsupported_response_type": (_l("登录请求的格式不正确。"),
                                  _l("请回到原网站重新点击“登录”，不要直接打开本页面的地址。")),
    "invalid_request": (_l("登录请求不完整或格式不正确。"),
                        _l("请回到原网站重新点击“登录”。")),
    "invalid_scope": (_l("网站申请读取的信息不在允许范围内。"),
                      _l("请联系该网站的客服。")),
    "access_denied": (_l("登录已取消。"), _l("如需继续，请回到原网站重新登录。")),
    "invalid_request_uri": (_l("登录请求已失效或不存在。"), _l("请回到原网站重新点击“登录”。")),
    "invalid_request_object": (_l("登录请求的签名或内容无效。"), _l("请联系该网站的客服。")),
    "request_not_supported": (_l("登录请求使用了本平台不支持的方式。"), _l("请联系该网站的客服。")),
    "request_uri_not_supported": (_l("登录请求使用了本平台不支持的方式。"),
                                  _l("请联系该网站的客服。")),
    "server_error": (_l("服务暂时出现问题。"), _l("请稍后再试。")),
    "temporarily_unavailable": (_l("服务繁忙。"), _l("请稍后再试。")),
}
_OAUTH_DEFAULT = (_l("无法完成登录请求。"), _l("请回到原网站重新点击“登录”。"))

_HTTP = {
    400: (_l("请求有误"), _l("页面收到的内容不完整或格式不正确。"), _l("请返回上一页重试。")),
    403: (_l("无权访问"), _l("您没有访问该页面的权限。"), _l("请返回首页。")),
    404: (_l("找不到该页面"), _l("您访问的地址不存在，可能已被移除或输入有误。"),
          _l("请检查地址，或返回首页。")),
    405: (_l("无法这样打开该页面"), _l("该地址不接受这种访问方式。"),
          _l("请从页面上的链接或按钮进入。")),
    413: (_l("提交的内容过大"), _l("上传的文件或填写的内容超过了允许的大小。"),
          _l("请缩小后重试。")),
    429: (_l("操作过于频繁"), _l("短时间内的请求次数过多。"), _l("请稍等片刻再试。")),
}


def _language_of_request() -> None:
    """Honour ``ui_locales`` here too (a relying party's request ended on this page)."""
    # The query only: reading a body here could be what failed (413, a malformed form).
    asked = request.args.get("ui_locales") if request else None
    if asked:
        pick_locale_from(asked)
    # The language may have been settled earlier in this request (or, where an app
    # context outlives requests, in an earlier one): choose it again now.
    refresh()


def oauth_error(err, status: int = 400):
    """The page for an authorization error that cannot go back to the relying party."""
    _language_of_request()
    code = getattr(err, "error", None) or "invalid_request"
    what, todo = _OAUTH.get(code, _OAUTH_DEFAULT)
    return render_template("error.html", title=_l("无法完成登录"), detail=what, advice=todo,
                           code=code), status


def http_error(err):
    """The page for a 4xx/5xx the app did not answer otherwise (a 404, a 405…)."""
    _language_of_request()
    status = getattr(err, "code", None) or 500
    title, what, todo = _HTTP.get(status, (_l("无法完成请求"), _l("服务未能处理该请求。"),
                                          _l("请稍后再试，或返回首页。")))
    return render_template("error.html", title=title, detail=what, advice=todo,
                           code=str(status)), status
