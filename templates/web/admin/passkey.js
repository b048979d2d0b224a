// Passkeys (WebAuthn) of the staff dashboard: the only script of /admin. A button with
// data-passkey="create" or "get" reads the options from its form's data-options (JSON),
// asks the browser, puts the answer into the form's "credential" field and submits it.
// Without script the buttons stay hidden and passwords (and codes) still work.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-passkey]")) {
    if (!window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) continue;
    button.hidden = false;
    button.addEventListener("click", async (event) => {
      event.preventDefault();
      const form = button.form;
      const options = JSON.parse(form.dataset.options);
      const status = form.querySelector(".passkey-status");
      try {
        const credential = button.dataset.passkey === "create"
          ? await navigator.credentials.create(
              {publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options)})
          : await navigator.credentials.get(
              {publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)});
        form.elements.credential.value = JSON.stringify(credential.toJSON());
        form.submit();
      } catch (error) {
        status.textContent = "The passkey was not used: " + error.message;
      }
    });
  }
});
