// The console's shell: navigation, language, sign-in state, and the hash router.

import { signedIn, signOut } from "./api.js";
import { clear, h } from "./dom.js";
import { LANGUAGES, language, setLanguage, t } from "./i18n.js";
import * as audiences from "./pages/audiences.js";
import * as login from "./pages/login.js";
import * as rules from "./pages/rules.js";
import * as runs from "./pages/runs.js";
import * as tags from "./pages/tags.js";
import * as users from "./pages/users.js";

const SECTIONS = [
  ["tags", "nav.tags"],
  ["rules", "nav.rules"],
  ["runs", "nav.runs"],
  ["users", "nav.users"],
  ["audiences", "nav.audiences"],
];

// "#/runs/abc" -> page runs, params ["abc"]
const PAGES = { tags, rules, runs, jobs: runs, users, audiences, login };

let cleanup = null;

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const name = parts[0] && PAGES[parts[0]] ? parts[0] : "tags";
  return { name, params: parts.slice(1) };
}

function renderNav(active) {
  const nav = clear(document.getElementById("nav"));
  if (!signedIn()) return;
  const section = active === "jobs" ? "runs" : active;
  nav.append(
    h(
      "ul",
      null,
      SECTIONS.map(([name, key]) =>
        h("li", null, h("a", { href: `#/${name}`, "aria-current": name === section ? "page" : null }, t(key))),
      ),
    ),
  );
}

function renderBarEnd() {
  const end = clear(document.getElementById("bar-end"));
  const select = h(
    "select",
    { id: "language", "aria-label": t("shell.language"), onChange: (e) => changeLanguage(e.target.value) },
    LANGUAGES.map(([code, name]) => h("option", { value: code, selected: code === language() }, name)),
  );
  end.append(select);
  if (signedIn()) {
    end.append(h("button", { type: "button", class: "link", onClick: logout }, t("shell.signOut")));
  }
}

function changeLanguage(lang) {
  setLanguage(lang);
  render({ keep: true }); // the page keeps what was typed: only its text changes
  document.getElementById("language")?.focus();
}

function logout() {
  signOut();
  location.hash = "#/login";
}

export function render({ keep = false } = {}) {
  if (cleanup) cleanup();
  cleanup = null;
  let { name, params } = route();
  if (!signedIn() && name !== "login") {
    location.replace(`#/login`);
    return;
  }
  document.querySelector(".skip").textContent = t("shell.skip");
  renderNav(name);
  renderBarEnd();
  const main = clear(document.getElementById("main"));
  const page = PAGES[name];
  document.title = `${t(`title.${name}`)} · tagsys`;
  cleanup = page.render(main, { page: name, params, keep }) || null;
}

window.addEventListener("hashchange", () => {
  render();
  document.getElementById("main").focus({ preventScroll: true });
});
window.addEventListener("tagsys:unauthorized", () => {
  signOut();
  if (route().name !== "login") location.hash = "#/login/expired";
});

setLanguage(language());
render();
