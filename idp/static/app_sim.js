// The app simulator: a public OAuth client in the page (code + PKCE, rotating refresh
// tokens) that then talks only to /api/app with its bearer token, as a native app would.
(function () {
  "use strict";
  var root = document.getElementById("app-sim");
  if (!root || root.dataset.state !== "ready") return;
  var d = root.dataset;
  var KEY = "idp.demo-app.tokens";
  var PKCE = "idp.demo-app.pkce";
  var $ = function (id) { return document.getElementById(id); };
  var pollTimer = null;

  // Tokens live in this tab's sessionStorage, on the issuer's origin only.
  var redirect = new URL(d.redirectUri);
  if (location.origin !== redirect.origin) {
    location.replace(d.redirectUri);
    return;
  }

  function b64url(bytes) {
    var s = "";
    bytes.forEach(function (b) { s += String.fromCharCode(b); });
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function random(n) { return b64url(crypto.getRandomValues(new Uint8Array(n))); }
  function fmt(msg, vars) {
    return msg.replace(/\{(\w+)\}/g, function (_m, k) { return vars[k] == null ? "" : vars[k]; });
  }
  function tokens() {
    try { return JSON.parse(sessionStorage.getItem(KEY)); } catch (e) { return null; }
  }
  function store(t) {
    var claims = {};
    try {
      var part = t.id_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      claims = JSON.parse(decodeURIComponent(escape(atob(part))));
    } catch (e) { claims = (tokens() || {}).claims || {}; }
    var kept = {access_token: t.access_token, refresh_token: t.refresh_token,
                expires_at: Date.now() + (t.expires_in || 300) * 1000, claims: claims};
    sessionStorage.setItem(KEY, JSON.stringify(kept));
    return kept;
  }
  function showError(msg) { var e = $("sim-error"); e.textContent = msg; e.hidden = !msg; }
  function say(msg) { $("sim-msg").textContent = msg; }

  function show() {
    var t = tokens();
    $("sim-signed-out").hidden = !!t;
    $("sim-signed-in").hidden = !t;
    root.dataset.signedIn = t ? "yes" : "no";
    clearTimeout(pollTimer);
    if (t) {
      var c = t.claims || {};
      $("sim-who").textContent = (c.name ? c.name + " · " : "") + "acr " + (c.acr || "?") +
        " · amr " + (c.amr || []).join(", ");
      refreshList();
    }
  }

  function signIn() {
    var verifier = random(48);
    var state = random(16);
    crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)).then(function (h) {
      sessionStorage.setItem(PKCE, JSON.stringify({verifier: verifier, state: state}));
      var q = new URLSearchParams({
        response_type: "code", client_id: d.clientId, redirect_uri: d.redirectUri,
        scope: "openid profile offline_access", state: state, nonce: random(16),
        code_challenge: b64url(new Uint8Array(h)), code_challenge_method: "S256"});
      location.assign(d.authorizeUrl + "?" + q.toString());
    });
  }

  function tokenRequest(params) {
    return fetch(d.tokenUrl, {
      method: "POST", credentials: "omit",
      headers: {"Content-Type": "application/x-www-form-urlencoded"},
      body: new URLSearchParams(params)
    }).then(function (resp) {
      return resp.json().then(function (body) {
        if (!resp.ok) throw new Error(body.error || resp.status);
        return body;
      });
    });
  }

  function finishSignIn(params) {
    var pk = null;
    try { pk = JSON.parse(sessionStorage.getItem(PKCE)); } catch (e) { pk = null; }
    sessionStorage.removeItem(PKCE);
    history.replaceState(null, "", redirect.pathname);
    if (!pk || pk.state !== params.get("state") || !params.get("code")) {
      showError(d.msgSigninFailed);
      return Promise.resolve();
    }
    return tokenRequest({grant_type: "authorization_code", code: params.get("code"),
                         redirect_uri: d.redirectUri, client_id: d.clientId,
                         code_verifier: pk.verifier})
      .then(store)
      .then(function () {
        // The phone's sign-in must not leave this (desk) browser signed in.
        return fetch(d.releaseUrl, {method: "POST", credentials: "same-origin",
                                    headers: {"X-CSRFToken": d.csrf}});
      })
      .catch(function () { showError(d.msgSigninFailed); });
  }

  function refresh() {
    var t = tokens();
    if (!t || !t.refresh_token) return Promise.reject(new Error("signed out"));
    return tokenRequest({grant_type: "refresh_token", refresh_token: t.refresh_token,
                         client_id: d.clientId})
      .then(store)
      .catch(function (e) { sessionStorage.removeItem(KEY); show(); throw e; });
  }

  function api(method, path, body, retried) {
    var t = tokens();
    if (!t) return Promise.reject(new Error("signed out"));
    var ready = Date.now() > t.expires_at - 30000 ? refresh() : Promise.resolve(t);
    return ready.then(function (tok) {
      return fetch(d.apiUrl + path, {
        method: method, credentials: "omit", cache: "no-store",
        headers: {"Authorization": "Bearer " + tok.access_token,
                  "Content-Type": "application/json", "Accept": "application/json"},
        body: body ? JSON.stringify(body) : undefined
      });
    }).then(function (resp) {
      if (resp.status === 401 && !retried) {
        return refresh().then(function () { return api(method, path, body, true); });
      }
      return resp.json().then(function (j) { return {status: resp.status, body: j}; });
    });
  }

  function item(r) {
    var li = document.createElement("li");
    li.className = "sim-item";
    li.dataset.id = r.id;
    li.dataset.kind = r.kind;
    var q = document.createElement("p");
    q.className = "sim-q";
    var name = r.client_name || r.client_id;
    q.textContent = fmt(r.kind === "qr" ? d.msgQr : d.msgCiba, {name: name});
    li.appendChild(q);
    var note = document.createElement("p");
    note.className = "sim-note";
    note.textContent = [r.binding_message, r.acr_asked, fmt(d.msgSeconds, {n: r.expires_in})]
      .filter(Boolean).join(" · ");
    li.appendChild(note);
    if (r.kind === "qr") origin(r).forEach(function (el) { li.appendChild(el); });
    var actions = document.createElement("div");
    actions.className = "sim-actions";
    [["approve", d.msgApprove, ""], ["deny", d.msgDeny, "secondary"]].forEach(function (a) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = a[2] + " sim-" + a[0];
      b.textContent = a[1];
      b.addEventListener("click", function () { decide(r.id, a[0]); });
      actions.appendChild(b);
    });
    li.appendChild(actions);
    return li;
  }

  // Where a QR sign-in would happen: the browser that showed the code. Someone who
  // sends or shows the person a code from their own browser is caught out here.
  function origin(r) {
    function line(cls, text, strong) {
      var p = document.createElement("p");
      p.className = cls;
      var t = document.createElement(strong ? "strong" : "span");
      t.textContent = text;
      p.appendChild(t);
      return p;
    }
    var out = [
      line("sim-origin sim-origin-device", fmt(d.msgOriginDevice,
                                              {device: r.device || d.msgUnknown}), true),
      line("sim-origin sim-origin-network", fmt(d.msgOriginNetwork,
                                               {network: r.network || d.msgUnknown}), true)
    ];
    if (r.different_network) {
      out.push(line("error sim-different-network", d.msgDifferentNetwork, true));
    }
    out.push(line("error sim-qr-warning", d.msgQrWarning, false));
    return out;
  }

  function refreshList() {
    clearTimeout(pollTimer);
    api("GET", "/requests").then(function (res) {
      if (res.status !== 200) return;
      var list = $("sim-requests");
      list.replaceChildren.apply(list, res.body.requests.map(item));
      $("sim-empty").hidden = res.body.requests.length > 0;
    }).catch(function () { /* signed out, or offline: try again below */ })
      .then(function () { if (tokens()) pollTimer = setTimeout(refreshList, 2000); });
  }

  function decide(id, decision) {
    api("POST", "/requests/" + encodeURIComponent(id), {decision: decision}).then(function (res) {
      if (res.status === 200) say(decision === "approve" ? d.msgApproved : d.msgDenied);
      else if (res.body.error === "insufficient_user_authentication") say(d.msgTooWeak);
      else say(d.msgGone);
      refreshList();
    }).catch(function () { say(d.msgFailed); });
  }

  var SCAN_ERRORS = {unknown_ticket: "msgUnknownTicket", expired_ticket: "msgExpiredTicket",
                     already_scanned: "msgAlreadyScanned"};

  function scan() {
    var value = $("sim-ticket").value.trim();
    if (!value) return;
    api("POST", "/qr/scan", {ticket: value}).then(function (res) {
      if (res.status === 200) {
        $("sim-ticket").value = "";
        say(d.msgScanned);
        refreshList();
      } else {
        say(d[SCAN_ERRORS[res.body.error] || "msgFailed"]);
      }
    }).catch(function () { say(d.msgFailed); });
  }

  function signOut() {
    var t = tokens();
    sessionStorage.removeItem(KEY);
    if (t && t.refresh_token) {
      fetch(d.revokeUrl, {method: "POST", credentials: "omit",
                          headers: {"Content-Type": "application/x-www-form-urlencoded"},
                          body: new URLSearchParams({token: t.refresh_token,
                                                     token_type_hint: "refresh_token",
                                                     client_id: d.clientId})});
    }
    say("");
    show();
  }

  $("sim-login").addEventListener("click", signIn);
  $("sim-scan").addEventListener("click", scan);
  $("sim-ticket").addEventListener("keydown", function (e) { if (e.key === "Enter") scan(); });
  $("sim-logout").addEventListener("click", signOut);

  var params = new URLSearchParams(location.search);
  var pendingSignIn = params.has("code") || params.has("error")
    ? finishSignIn(params) : Promise.resolve();
  pendingSignIn.then(show);
})();
