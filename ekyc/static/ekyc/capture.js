// Onboarding: camera capture and status polling. Progressive enhancement only: every page works
// without this file (plain forms and file inputs); this adds getUserMedia on top. Captured
// photos are put into the same form fields the no-JavaScript path uses, so one server path
// handles both.
(function () {
  "use strict";

  var media = navigator.mediaDevices;
  var canCamera = !!(media && media.getUserMedia) && window.isSecureContext &&
    typeof DataTransfer === "function" && !!HTMLCanvasElement.prototype.toBlob;

  function part(root, name) { return root.querySelector('[data-part="' + name + '"]'); }
  function action(root, name) { return root.querySelector('[data-action="' + name + '"]'); }
  function show(el, on) { if (el) el.hidden = !on; }
  function say(root, key, value) {
    var status = part(root, "status");
    var text = status.dataset[key] || "";
    status.textContent = value ? text.replace("{action}", value) : text;
  }

  function stopStream(video) {
    var stream = video.srcObject;
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    video.srcObject = null;
  }

  // Opens the camera in `root`'s viewer; resolves with the playing <video>.
  function openCamera(root, facing) {
    var video = root.querySelector("video");
    return media.getUserMedia({ audio: false, video: {
      facingMode: { ideal: facing }, width: { ideal: 1920 }, height: { ideal: 1080 } } })
      .then(function (stream) {
        video.srcObject = stream;
        show(part(root, "viewer"), true);
        return video.play().then(function () { return video; });
      });
  }

  // One frame of the video as a JPEG blob, scaled so its longest side is at most `maxSide`.
  function grab(video, maxSide, quality) {
    var w = video.videoWidth, h = video.videoHeight;
    var scale = Math.min(1, maxSide / Math.max(w, h));
    var canvas = document.createElement("canvas");
    canvas.width = Math.round(w * scale);
    canvas.height = Math.round(h * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise(function (resolve, reject) {
      canvas.toBlob(function (blob) {
        if (blob) resolve({ blob: blob, canvas: canvas }); else reject(new Error("no frame"));
      }, "image/jpeg", quality);
    });
  }

  function setFiles(input, files) {
    var transfer = new DataTransfer();
    files.forEach(function (f) { transfer.items.add(f); });
    input.files = transfer.files;
  }

  function previewFile(file, img) {
    if (!img || !file || !window.FileReader) return;
    var reader = new FileReader();
    reader.onload = function () { img.src = reader.result; img.hidden = false; };
    reader.readAsDataURL(file);  // a data: URL: allowed by the CSP's img-src, blob: is not
  }

  function cameraButtons(root, on) {
    show(action(root, "start"), !on);
    show(action(root, "shoot"), on);
    show(action(root, "stop"), on);
  }

  // Card front/back: camera with a card-shaped guide; the shot goes into the file input.
  function cardPage(root) {
    var form = document.querySelector('form[data-upload="card"]');
    var input = form.querySelector('input[type="file"]');
    var preview = part(form, "preview");
    var advance = form.querySelector('input[name="advance"]');
    var tooLarge = part(form, "too-large");
    var maxBytes = parseInt(form.dataset.maxBytes, 10) || Infinity;
    input.addEventListener("change", function () {
      var file = input.files[0];
      // Said here, before a long upload the server would refuse anyway.
      var big = !!file && file.size > maxBytes;
      tooLarge.hidden = !big;
      if (big) {
        tooLarge.setAttribute("role", "alert");
        input.value = "";
        preview.hidden = true;
        return;
      }
      previewFile(file, preview);
      advance.value = "1";  // seen in the preview: after sending, go on to the next step
    });
    if (!canCamera) return;
    root.hidden = false;
    var video = root.querySelector("video");
    action(root, "start").addEventListener("click", function () {
      openCamera(root, "environment").then(function () {
        cameraButtons(root, true);
        say(root, "on");
        action(root, "shoot").focus();
      }).catch(function () { say(root, "failed"); input.focus(); });
    });
    action(root, "stop").addEventListener("click", function () {
      stopStream(video);
      show(part(root, "viewer"), false);
      cameraButtons(root, false);
    });
    action(root, "shoot").addEventListener("click", function () {
      grab(video, 2400, 0.92).then(function (shot) {
        var file = new File([shot.blob], root.dataset.side + ".jpg", { type: "image/jpeg" });
        setFiles(input, [file]);
        advance.value = "1";
        preview.src = shot.canvas.toDataURL("image/jpeg", 0.8);
        preview.hidden = false;
        stopStream(video);
        show(part(root, "viewer"), false);
        cameraButtons(root, false);
        action(root, "start").textContent = action(root, "start").dataset.retake ||
          action(root, "start").textContent;
        say(root, "taken");
        form.querySelector('button[type="submit"]').focus();
      });
    });
  }

  // Selfie: a burst of frames over the random challenge, with client timestamps.
  function selfiePage(root) {
    if (!canCamera) return;
    root.hidden = false;
    var form = document.querySelector('form[data-upload="selfie"]');
    var video = root.querySelector("video");
    var steps = Array.prototype.slice.call(document.querySelectorAll("[data-action-code]"));
    var maxFrames = parseInt(root.dataset.maxFrames, 10) || 13;
    // A blink lasts 150-300 ms: its step is captured faster (4 frames, 130 ms apart).
    var blinkFrames = 4, blinkEvery = 130, straightFrames = 3;
    var blinks = steps.filter(function (li) { return li.dataset.actionCode === "blink"; }).length;
    var moves = Math.max(1, steps.length - blinks);
    // What is left after the look straight and the blinks, shared by the head movements (2-4).
    var perStep = Math.min(4, Math.max(2, Math.floor(
      (maxFrames - straightFrames - blinkFrames * blinks) / moves)));
    var busy = false;

    action(root, "start").addEventListener("click", function () {
      openCamera(root, "user").then(function () {
        cameraButtons(root, true);
        say(root, "on");
        action(root, "shoot").focus();
      }).catch(function () { say(root, "failed"); });
    });
    action(root, "stop").addEventListener("click", function () {
      stopStream(video);
      show(part(root, "viewer"), false);
      cameraButtons(root, false);
    });

    function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

    action(root, "shoot").addEventListener("click", function () {
      if (busy) return;
      busy = true;
      action(root, "shoot").disabled = true;
      var frames = [], stamps = [];
      function burst(count, every) {
        var chain = Promise.resolve();
        for (var i = 0; i < count; i++) {
          chain = chain.then(function () { return wait(every || 350); }).then(function () {
            return grab(video, 960, 0.85).then(function (shot) {
              stamps.push(Date.now());
              frames.push(new File([shot.blob], "frame-" + frames.length + ".jpg",
                { type: "image/jpeg" }));
            });
          });
        }
        return chain;
      }
      say(root, "straight");
      // First a short look straight at the camera (3 frames: the reference pose and open eyes
      // the server compares every action with), then each action in turn.
      var chain = wait(800).then(function () { return burst(straightFrames); });
      steps.forEach(function (li) {
        chain = chain.then(function () {
          steps.forEach(function (other) { other.classList.remove("now"); });
          li.classList.add("now");
          say(root, "now", li.textContent.trim());
          return wait(900);
        }).then(function () {
          return li.dataset.actionCode === "blink" ? burst(blinkFrames, blinkEvery) : burst(perStep);
        });
      });
      chain.then(function () {
        steps.forEach(function (other) { other.classList.remove("now"); });
        stopStream(video);
        say(root, "sending");
        frames = frames.slice(0, maxFrames);
        stamps = stamps.slice(0, maxFrames);
        var manual = part(form, "manual");
        manual.querySelectorAll('input[type="file"]').forEach(function (el) { el.disabled = true; });
        var input = document.createElement("input");
        input.type = "file";
        input.name = "frames";
        input.multiple = true;
        input.hidden = true;
        form.appendChild(input);
        setFiles(input, frames);
        form.querySelector('input[name="timestamps_ms"]').value = stamps.join(",");
        form.querySelector('input[name="source"]').value = "camera";
        form.submit();
      }).catch(function () { busy = false; action(root, "shoot").disabled = false; say(root, "failed"); });
    });
  }

  // Status: ask the server every few seconds; reload only when the state changed.
  function statusPage(root) {
    var url = root.dataset.poll;
    if (!url || !window.fetch) return;
    var every = Math.max(2, parseInt(root.dataset.interval, 10) || 5) * 1000;
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (data && data.state !== root.dataset.status) window.location.reload();
          else setTimeout(poll, every);
        }).catch(function () { setTimeout(poll, every * 2); });
    }
    setTimeout(poll, every);
  }

  var card = document.querySelector('[data-camera="card"]');
  if (card) cardPage(card);
  var selfie = document.querySelector('[data-camera="selfie"]');
  if (selfie) selfiePage(selfie);
  var status = document.querySelector("[data-status]");
  if (status) statusPage(status);
})();
