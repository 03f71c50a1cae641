// The settings page: copy buttons, confirmation before revoking or signing out, and
// the lists kept current when another window changed them (read again on focus).
const CONFIRM_SELECTOR = "form.confirm";

async function copy(button) {
  const text = document.getElementById(button.dataset.copy)?.textContent ?? "";
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch (err) {
    button.textContent = "Select and copy";
    window.getSelection()?.selectAllChildren(document.getElementById(button.dataset.copy));
  }
  setTimeout(() => { button.textContent = "Copy"; }, 2000);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (button) copy(button);
});

document.addEventListener("submit", (event) => {
  const form = event.target.closest(CONFIRM_SELECTOR);
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

async function refreshLists() {
  const response = await fetch("/settings", { credentials: "same-origin" });
  if (response.redirected && new URL(response.url).pathname === "/login") { window.location.assign("/login"); return; }
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ["token-table", "session-table"]) {
    const now = fresh.getElementById(id);
    const shown = document.getElementById(id);
    if (now && shown && now.innerHTML !== shown.innerHTML) shown.replaceWith(now);
  }
}

window.addEventListener("focus", () => { refreshLists().catch((err) => console.warn("settings not refreshed", err)); });
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refreshLists().catch((err) => console.warn("settings not refreshed", err));
});
