// Scan-to-login: ask for a ticket, show its QR code, poll until the app answers.
(function () {
  "use strict";
  var root = document.getElementById("qr-login");
  if (!root) return;
  var d = root.dataset;
  var box = document.getElementById("qr-box");
  var img = document.getElementById("qr-img");
  var stateEl = document.getElementById("qr-state");
  var link = document.getElementById("qr-link");
  var renew = document.getElementById("qr-renew");
  var start = document.getElementById("qr-start");
  var form = document.getElementById("qr-complete");
  var ticket = null;
  var timer = null;
  var interval = 1000;

  function say(msg, bad) {
    stateEl.textContent = msg;
    stateEl.className = "qr-state" + (bad ? " qr-bad" : "");
  }

  function dead(msg) {
    // A ticket that cannot succeed any more: grey the code out, offer a new one.
    clearTimeout(timer);
    ticket = null;
    box.classList.add("qr-dead");
    root.dataset.state = "dead";
    say(msg, true);
    renew.hidden = false;
  }

  function begin() {
    clearTimeout(timer);
    start.hidden = true;
    box.hidden = false;
    box.classList.remove("qr-dead");
    renew.hidden = true;
    root.dataset.state = "loading";
    say(d.msgLoading);
    fetch(d.ticketUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRFToken": d.csrf},
      body: JSON.stringify({rid: d.rid || null})
    }).then(function (resp) {
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      return resp.json();
    }).then(function (t) {
      ticket = t.ticket;
      interval = t.poll_ms || 1000;
      img.src = t.qr;
      link.textContent = t.url;
      root.dataset.state = "pending";
      say(d.msgPending);
      timer = setTimeout(poll, interval);
    }).catch(function () { dead(d.msgError); });
  }

  function poll() {
    if (!ticket) return;
    var mine = ticket;
    fetch(d.statusUrl.replace("TICKET", encodeURIComponent(mine)), {
      credentials: "same-origin", cache: "no-store", headers: {"Accept": "application/json"}
    }).then(function (resp) {
      return resp.json().catch(function () { return {state: "error"}; });
    }).then(function (s) {
      if (mine !== ticket) return;  // a newer code replaced this one meanwhile
      root.dataset.state = s.state;
      if (s.state === "pending" || s.state === "scanned") {
        say(s.state === "scanned" ? d.msgScanned : d.msgPending);
        timer = setTimeout(poll, interval);
      } else if (s.state === "approved") {
        say(d.msgApproved);
        form.elements.ticket.value = mine;
        form.submit();
      } else if (s.state === "denied") {
        dead(d.msgDenied);
      } else {
        dead(d.msgExpired);
      }
    }).catch(function () {
      // A network blip: keep asking, a little more slowly.
      if (mine === ticket) timer = setTimeout(poll, interval * 2);
    });
  }

  start.addEventListener("click", begin);
  renew.addEventListener("click", begin);
})();
