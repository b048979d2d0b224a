// The sign-up form's proof of work (ALTCHA v1, publisher/web/proof.py): find the number
// whose SHA-256 after the salt is the challenge, put the answer in the form, then let it go.
// Served by publisher itself: no third party sees the visitor.
(function () {
  "use strict";
  var form = document.querySelector("form[data-altcha]");
  if (!form || !window.crypto || !crypto.subtle) return;
  var task = JSON.parse(form.getAttribute("data-altcha"));
  var field = form.querySelector("input[name=altcha]");
  var status = document.getElementById("altcha-status");
  var encoder = new TextEncoder();

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  async function solve() {
    for (var n = 0; n <= task.maxnumber; n++) {
      var digest = await crypto.subtle.digest("SHA-256", encoder.encode(task.salt + n));
      if (hex(digest) === task.challenge) return n;
    }
    return null;
  }

  var solution = solve().then(function (number) {
    field.value = btoa(JSON.stringify({
      algorithm: task.algorithm, challenge: task.challenge, number: number,
      salt: task.salt, signature: task.signature
    }));
  });

  form.addEventListener("submit", function (event) {
    if (field.value) return;
    event.preventDefault();
    if (status) status.textContent = "One moment…";
    solution.then(function () { form.submit(); });
  });
})();
