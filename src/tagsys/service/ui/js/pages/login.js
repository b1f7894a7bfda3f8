// Sign in with an API key: checked against a protected endpoint, kept for this tab only.

import { ApiError, get, signIn, signOut } from "../api.js";
import { add, field, h } from "../dom.js";
import { t } from "../i18n.js";

export function render(main, { params }) {
  const key = h("input", { type: "password", name: "key", autocomplete: "current-password" });
  const error = h("p", { class: "error", id: "login-error", role: "alert" });
  if (params[0] === "expired") error.textContent = t("login.expired");
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "login-title", onSubmit: (e) => submit(e, key, error) },
    h("h1", { id: "login-title" }, t("login.title")),
    h("p", null, t("login.intro")),
    field(t("login.key"), key, t("login.keyHint")),
    error,
    h("button", { type: "submit", class: "primary" }, t("login.submit")),
  );
  add(main, form);
  key.focus();
}

async function submit(event, key, error) {
  event.preventDefault();
  error.textContent = "";
  signIn(key.value.trim());
  try {
    await get("/api/v1/categories");
  } catch (exc) {
    signOut();
    const unauthorized = exc instanceof ApiError && exc.status === 401;
    error.textContent = unauthorized ? t("login.wrongKey") : exc.message;
    key.focus();
    return;
  }
  location.hash = "#/tags";
}
