"""Error pages say in the person's language what happened and what to do; the OAuth code
is only a detail, and ui_locales counts here as on every other page (issue 11)."""

from __future__ import annotations

from tests.helpers import make_client


def test_unknown_client_is_explained_in_chinese_with_the_code_as_a_detail(client):
    resp = client.get("/authorize?response_type=code&client_id=nobody&scope=openid"
                      "&redirect_uri=https://rp.example/cb")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "未在本平台登记" in html and 'id="error-code"' in html and "invalid_client" in html
    assert "does not exist" not in html  # Authlib's English description stays out


def test_a_bare_authorize_says_what_to_do_not_the_library_text(client):
    html = client.get("/authorize").get_data(as_text=True)
    assert "The response type" not in html and "is not supported" not in html
    assert "请回到原网站" in html


def test_ui_locales_en_gives_the_english_error_page(ctx, client):
    make_client("rp1")
    resp = client.get("/authorize?response_type=code&client_id=nobody&ui_locales=en")
    html = resp.get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "is not registered with this platform" in html and "未在本平台登记" not in html


def test_404_is_the_platform_page_in_either_language(client):
    zh = client.get("/no/such/page")
    assert zh.status_code == 404
    assert "找不到该页面" in zh.get_data(as_text=True)
    assert "Not Found" not in zh.get_data(as_text=True)
    en = client.get("/no/such/page?lang=en")
    assert en.status_code == 404 and "Page not found" in en.get_data(as_text=True)


def test_api_errors_stay_json(client):
    resp = client.post("/token", data={"grant_type": "nope"})
    assert resp.is_json
