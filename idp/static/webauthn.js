/* Passkeys (WebAuthn): binding a credential, signing in, stepping up.
 *
 * Every block marked data-passkey="register|login|stepup" carries the URLs of its two
 * JSON endpoints, the CSRF token (sent as X-CSRFToken) and, already translated, the
 * messages shown for problems found here in the browser. Server errors come back as
 * {error, message} with the message readable as it is.
 */
(function () {
  "use strict";

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer), text = "";
    for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromB64url(value) {
    var b64 = value.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var text = atob(b64), bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes.buffer;
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var out = { type: d.type, id: fromB64url(d.id) };
      if (d.transports) out.transports = d.transports;
      return out;
    });
  }

  function creationOptions(json) {
    var o = Object.assign({}, json);
    o.challenge = fromB64url(json.challenge);
    o.user = Object.assign({}, json.user, { id: fromB64url(json.user.id) });
    o.excludeCredentials = descriptors(json.excludeCredentials);
    return o;
  }

  function requestOptions(json) {
    var o = Object.assign({}, json);
    o.challenge = fromB64url(json.challenge);
    o.allowCredentials = descriptors(json.allowCredentials);
    return o;
  }

  function credentialJSON(cred) {
    var r = cred.response, response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      if (r.userHandle) response.userHandle = toB64url(r.userHandle);
    }
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: response,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
  }

  function post(block, url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRFToken": block.dataset.csrf
      },
      body: JSON.stringify(body)
    }).then(function (resp) {
      return resp.json().catch(function () {
        // Not JSON: the page expired (CSRF) or the server failed.
        return { error: "unreadable", message: block.dataset.msgFailed };
      }).then(function (data) {
        if (!resp.ok && !data.error) data.error = "http_" + resp.status;
        return data;
      });
    });
  }

  function say(block, text, isError) {
    var out = block.querySelector("[data-passkey-status]");
    if (!out) return;
    out.textContent = text || "";
    out.className = isError ? "error passkey-status" : "muted passkey-status";
    out.hidden = !text;
  }

  // The session is below the level for binding: the message, and a link into the
  // step-up that comes back to this page (a path on this site only).
  function stepUp(block, err) {
    say(block, err.message || block.dataset.msgFailed, true);
    var url = err.step_up_url;
    if (typeof url !== "string" || url.charAt(0) !== "/" || url.charAt(1) === "/" ||
        url.charAt(1) === "\\") return;
    var out = block.querySelector("[data-passkey-status]"), link = document.createElement("a");
    link.href = url;
    link.textContent = block.dataset.msgStepUp || url;
    link.setAttribute("data-passkey-step-up", "");
    out.appendChild(document.createTextNode(" "));
    out.appendChild(link);
  }

  function value(selector) {
    var el = selector ? document.querySelector(selector) : null;
    return el ? el.value.trim() : "";
  }

  function run(block) {
    var kind = block.dataset.passkey, button = block.querySelector("[data-passkey-start]");
    var base = { rid: block.dataset.rid || undefined };
    if (kind === "login") base.username = value(block.dataset.usernameField) || undefined;
    button.disabled = true;
    say(block, block.dataset.msgWorking, false);
    post(block, block.dataset.optionsUrl, base).then(function (options) {
      if (options.error) throw options;
      return kind === "register"
        ? navigator.credentials.create({ publicKey: creationOptions(options) })
        : navigator.credentials.get({ publicKey: requestOptions(options) });
    }).then(function (cred) {
      var body = Object.assign({}, base, { credential: credentialJSON(cred) });
      if (kind === "register") body.name = value(block.dataset.nameField) || undefined;
      return post(block, block.dataset.verifyUrl, body);
    }).then(function (result) {
      if (result.error) throw result;
      block.dataset.state = "done";
      say(block, block.dataset.msgDone, false);
      if (result.redirect) window.location.assign(result.redirect);
      else window.location.reload();
    }).catch(function (err) {
      button.disabled = false;
      block.dataset.state = "error";
      if (err && err.error === "step_up_required") stepUp(block, err);
      else if (err && err.message && err.error) say(block, err.message, true);
      else if (err && (err.name === "NotAllowedError" || err.name === "AbortError"))
        say(block, block.dataset.msgCancelled, true);
      else if (err && err.name === "InvalidStateError")
        say(block, block.dataset.msgExists || block.dataset.msgFailed, true);
      else say(block, block.dataset.msgFailed, true);
    });
  }

  function init() {
    var supported = !!(window.PublicKeyCredential && navigator.credentials && window.fetch);
    document.querySelectorAll("[data-passkey]").forEach(function (block) {
      if (block.dataset.ready) return;
      block.dataset.ready = "1";
      if (!supported) {
        if (block.dataset.passkey === "register") say(block, block.dataset.msgUnsupported, true);
        else block.hidden = true;
        var b = block.querySelector("[data-passkey-start]");
        if (b) b.disabled = true;
        return;
      }
      block.querySelector("[data-passkey-start]").addEventListener("click", function () {
        run(block);
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
