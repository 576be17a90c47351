// The sign-in request's deadline (templates/_deadline.html): shortly before it lapses,
// a polite live-region warning with "延长时间"; the button posts the request id and the
// page's CSRF token to /login/extend and the new deadline replaces the old one. Times
// count from this page's load (the server's seconds left), not from the device clock.
(function () {
  "use strict";
  var box = document.getElementById("deadline");
  if (!box) { return; }
  var region = document.getElementById("deadline-warning");
  var text = document.getElementById("deadline-warning-text");
  var lead = document.getElementById("deadline-text");
  var button = document.getElementById("deadline-extend");
  var restart = document.getElementById("deadline-restart");
  var warnAt = parseInt(box.dataset.warn, 10) * 1000;
  var final = box.dataset.final === "1";
  var endsAt = Date.now() + parseInt(box.dataset.seconds, 10) * 1000;
  var deadline = box.dataset.at;
  var shown = "";  // which message is up: "", "warn", "done", "expired"
  var busy = false;

  function fill(template, minutes) {
    return template.replace("{minutes}", String(minutes)).replace("{at}", deadline);
  }

  function say(message, kind) {
    shown = kind;
    text.textContent = message;
    region.classList.toggle("active", message !== "");
  }

  function tick() {
    var left = endsAt - Date.now();
    if (left <= 0) {
      if (shown !== "expired") {
        button.hidden = true;
        restart.hidden = false;
        say(box.dataset.expiredText, "expired");
      }
      return;
    }
    if (left <= warnAt && shown !== "warn") {
      var minutes = Math.max(1, Math.ceil(left / 60000));
      button.hidden = final;
      say(fill(final ? box.dataset.finalText : box.dataset.warnText, minutes), "warn");
    }
  }

  button.addEventListener("click", function () {
    if (busy) { return; }
    busy = true;
    button.disabled = true;
    var body = new URLSearchParams();
    body.set("rid", box.dataset.rid);
    body.set("csrf_token", box.dataset.csrf);
    fetch(box.dataset.extend, {
      method: "POST", body: body, credentials: "same-origin",
      headers: {"Accept": "application/json"}
    }).then(function (resp) {
      return resp.json().then(function (data) { return {ok: resp.ok, data: data}; });
    }).then(function (answer) {
      if (!answer.ok) {
        endsAt = Date.now();  // lapsed or refused: say so, offer to start again
        tick();
        return;
      }
      var data = answer.data;
      endsAt = Date.now() + data.expires_in * 1000;
      final = !!data.final;
      deadline = data.deadline;
      lead.textContent = data.message;
      button.hidden = true;
      say(data.message, "done");
    }).catch(function () {
      button.hidden = false;
      say(box.dataset.failedText, "warn");
    }).then(function () {
      busy = false;
      button.disabled = false;
    });
  });

  tick();
  window.setInterval(tick, 1000);
}());
