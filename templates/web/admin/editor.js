// The post editor's live preview (issue 20): as one types, the body is sent (with the
// form's token) to /admin/posts/preview, which answers the sanitised HTML readers will get.
// Without script the Preview button does the same by reloading the page.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-preview]");
  const out = document.querySelector(".preview-body");
  if (!form || !out) return;
  let timer = null;
  let asked = 0;
  const update = async () => {
    const mine = ++asked;
    const data = new URLSearchParams();
    data.set("csrf", form.elements.csrf.value);
    data.set("body", form.elements.body.value);
    data.set("slug", form.elements.slug.value);
    try {
      const response = await fetch(form.dataset.preview, {method: "POST", body: data});
      // a redirect means the session ended: keep the last preview
      if (response.ok && !response.redirected && mine === asked) {
        out.innerHTML = await response.text();
      }
    } catch (error) {
      // offline for a moment: the next keystroke tries again
    }
  };
  form.elements.body.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(update, 300);
  });
  update();
  // "Schedule" for a date after the page's now (both in the organisation's zone, written
  // YYYY-MM-DDTHH:MM, so they compare as text); the server decides again on saving
  const publish = form.querySelector("button[data-publish]");
  form.elements.date.addEventListener("input", () => {
    const later = form.elements.date.value > form.dataset.now;
    publish.textContent = later ? "Schedule" : "Publish";
  });
});
