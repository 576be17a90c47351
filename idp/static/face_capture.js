/* Face match on the step-up page (step_up_face.html).
 *
 * The block #face-capture carries the endpoint, the CSRF token (sent as X-CSRFToken),
 * the authorization request id and, already translated, the messages shown here. The
 * camera path: getUserMedia -> <video> -> one frame drawn on a canvas -> JPEG blob ->
 * multipart POST. The upload form below works without this script as a plain form; with
 * it, a chosen file goes the same way as a camera frame so both show the same messages.
 * The server answers {ok, redirect} or {error, message} (message readable as it is).
 */
(function () {
  "use strict";

  var block = document.getElementById("face-capture");
  if (!block) return;
  var d = block.dataset;
  var video = block.querySelector("[data-face-video]");
  var frame = block.querySelector("[data-face-frame]");
  var startBtn = block.querySelector("[data-face-start]");
  var shootBtn = block.querySelector("[data-face-shoot]");
  var status = block.querySelector("[data-face-status]");
  var upload = document.getElementById("face-upload");
  var stream = null;
  var busy = false;

  function say(text, isError) {
    status.textContent = text;
    status.hidden = !text;
    status.classList.toggle("is-error", !!isError);
  }

  function stopCamera() {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
  }

  function send(blob, filename, liveness) {
    if (busy) return;
    busy = true;
    shootBtn.disabled = true;
    say(d.msgWorking, false);
    var body = new FormData();
    body.append("rid", d.rid);
    body.append("image", blob, filename);
    body.append("liveness", JSON.stringify(liveness));
    fetch(d.url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": d.csrf },
      body: body
    }).then(function (resp) {
      return resp.json().catch(function () {
        // Not JSON: the CSRF check refused the request (the page is too old).
        return { error: "expired", message: d.msgExpired };
      });
    }).then(function (answer) {
      if (answer.ok && answer.redirect) {
        stopCamera();
        say(d.msgDone, false);
        window.location.assign(answer.redirect);
        return;
      }
      say(answer.message || d.msgFailed, true);
      busy = false;
      shootBtn.disabled = false;
    }).catch(function () {
      say(d.msgFailed, true);
      busy = false;
      shootBtn.disabled = false;
    });
  }

  function startCamera() {
    say(d.msgStarting, false);
    startBtn.disabled = true;
    navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } }
    }).then(function (s) {
      stream = s;
      video.srcObject = s;
      frame.hidden = false;
      return video.play();
    }).then(function () {
      startBtn.hidden = true;
      shootBtn.hidden = false;
      say(d.msgReady, false);
    }).catch(function () {
      stopCamera();
      frame.hidden = true;
      startBtn.disabled = false;
      say(d.msgNoCamera, true);
    });
  }

  function shoot() {
    var w = video.videoWidth, h = video.videoHeight;
    if (!stream || !w || !h) { say(d.msgNoCamera, true); return; }
    var canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    canvas.getContext("2d").drawImage(video, 0, 0, w, h);
    canvas.toBlob(function (blob) {
      if (!blob) { say(d.msgFailed, true); return; }
      send(blob, "face.jpg", { source: "camera", width: w, height: h });
    }, "image/jpeg", 0.9);
  }

  if (navigator.mediaDevices && typeof navigator.mediaDevices.getUserMedia === "function") {
    block.hidden = false;
    startBtn.addEventListener("click", startCamera);
    shootBtn.addEventListener("click", shoot);
  } else {
    startBtn.hidden = true;  // the block then only shows how an upload went
  }

  if (upload) {
    upload.addEventListener("submit", function (event) {
      var input = upload.querySelector("input[type=file]");
      event.preventDefault();
      if (!input.files || !input.files.length) { block.hidden = false; say(d.msgNoFile, true); return; }
      block.hidden = false;
      var file = input.files[0];
      send(file, file.name || "face.jpg", { source: "file" });
    });
  }

  window.addEventListener("pagehide", stopCamera);
})();
