// The broadcast editor's live count (issue 21): when the audience's topics or exclusions
// change, ask /admin/broadcasts/count how many people it reaches now. Without script the
// Count button does the same by reloading the page with the form as typed.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-count]");
  const out = document.getElementById("reach");
  if (!form || !out) return;
  let asked = 0;
  const update = async () => {
    const mine = ++asked;
    const query = new URLSearchParams();
    for (const box of form.querySelectorAll("input[name=topics]:checked")) query.append("topics", box.value);
    for (const box of form.querySelectorAll("input[name=exclude]:checked")) query.append("exclude", box.value);
    try {
      const response = await fetch(form.dataset.count + "?" + query.toString());
      if (response.ok && !response.redirected && mine === asked) {
        out.textContent = (await response.json()).text;
      }
    } catch (error) {
      // offline for a moment: the next change tries again
    }
  };
  for (const box of form.querySelectorAll("input[name=topics], input[name=exclude]")) {
    box.addEventListener("change", update);
  }
});
