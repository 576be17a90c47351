// The demo kiosk screen: polls a device authorization, and ends an idle session.
// Everything it needs is in data- attributes of <body> (the page has no inline script:
// the Content-Security-Policy allows scripts from this site only).
(function () {
  'use strict';
  var body = document.body;
  var data = body.dataset;

  function post(url) {
    return fetch(url, {
      method: 'POST',
      headers: { 'X-CSRFToken': data.csrf || '', Accept: 'application/json' },
      credentials: 'same-origin',
    }).then(function (r) { return r.json(); });
  }

  // Device authorization: ask our own endpoint, which polls the token endpoint.
  if (data.kioskPoll) {
    var state = document.getElementById('kiosk-state');
    var interval = Math.max(5, Number(data.kioskInterval) || 5) * 1000;
    var deadline = Date.now() + (Number(data.kioskExpires) || 600) * 1000;
    var show = function (name) { state.textContent = state.dataset['msg' + name] || ''; };
    var finish = function (name) {
      show(name);
      setTimeout(function () { window.location.assign(data.kioskHome); }, 4000);
    };
    var tick = function () {
      if (Date.now() > deadline) { finish('Expired'); return; }
      post(data.kioskPoll).then(function (r) {
        if (r.state === 'pending') { setTimeout(tick, interval); return; }
        if (r.state === 'done') { show('Done'); window.location.assign(data.kioskHome); return; }
        finish(r.state === 'denied' ? 'Denied' : r.state === 'expired' ? 'Expired' : 'Error');
      }).catch(function () { setTimeout(tick, interval * 2); });
    };
    setTimeout(tick, interval);
  }

  // Inactivity: the next person may walk up at any moment.
  if (data.kioskIdle) {
    var idleMs = Number(data.kioskIdle) * 1000;
    var warnMs = Math.min(20000, idleMs / 4);
    var last = Date.now();
    var lastPing = Date.now();
    var warning = document.getElementById('kiosk-idle-warning');
    var touched = function () {
      last = Date.now();
      if (warning) warning.hidden = true;
      // Keep the server-side session as alive as the screen, without a request per tap.
      if (data.kioskPing && Date.now() - lastPing > 15000) {
        lastPing = Date.now();
        post(data.kioskPing).then(function (r) {
          if (!r.active) window.location.reload();
        }).catch(function () {});
      }
    };
    ['pointerdown', 'keydown', 'touchstart', 'wheel'].forEach(function (ev) {
      document.addEventListener(ev, touched, { passive: true });
    });
    setInterval(function () {
      var left = idleMs - (Date.now() - last);
      if (left <= 0) {
        var form = document.getElementById('kiosk-logout');
        if (form) {
          form.elements.reason.value = 'idle';
          form.submit();
        } else if (data.kioskIdleUrl) {
          window.location.assign(data.kioskIdleUrl);
        }
        last = Infinity; // once
      } else if (warning && left <= warnMs) {
        warning.textContent = warning.dataset.msg.replace('SECONDS', Math.ceil(left / 1000));
        warning.hidden = false;
      }
    }, 1000);
  }
}());
