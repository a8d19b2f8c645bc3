// Passkeys (WebAuthn). Progressive enhancement: the buttons appear only where the browser can.
(function () {
  if (!window.PublicKeyCredential || !PublicKeyCredential.parseCreationOptionsFromJSON) return;
  // WebAuthn refuses IP addresses as relying-party ids: offer passkeys on named hosts only.
  if (/^[0-9.]+$/.test(location.hostname) || location.hostname.indexOf(":") >= 0) return;
  var csrf = document.querySelector('input[name="csrf_token"]');
  function post(url, body) {
    return fetch(url, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.value : "" },
      body: body ? JSON.stringify(body) : "{}" }).then(function (r) { return r.json().then(function (j) { if (!r.ok) { var err = new Error("failed"); err.serverMessage = j.message; throw err; } return j; }); });
  }
  // Browser errors (a cancelled prompt, say) are English and technical: show our own words.
  function say(text) { var s = document.getElementById("passkey-status"); if (s) s.textContent = text || (s && s.dataset.failed) || ""; }
  var login = document.getElementById("passkey-login");
  if (login) {
    document.getElementById("passkey-area").hidden = false;
    login.addEventListener("click", function () {
      var ia = login.dataset.interaction;
      post("/login/passkey/options").then(function (opts) {
        return navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(opts) });
      }).then(function (cred) {
        return post("/login/passkey/verify" + (ia ? "?interaction=" + encodeURIComponent(ia) : ""), cred.toJSON());
      }).then(function (res) { window.location = res.next; }).catch(function (e) { say(e.serverMessage); });
    });
  }
  var reg = document.getElementById("passkey-register");
  if (reg) {
    reg.hidden = false;
    reg.addEventListener("click", function () {
      post("/account/passkeys/options").then(function (opts) {
        return navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(opts) });
      }).then(function (cred) { return post("/account/passkeys/verify", cred.toJSON()); })
        .then(function () { window.location.reload(); }).catch(function (e) { say(e.serverMessage); });
    });
  }
})();
