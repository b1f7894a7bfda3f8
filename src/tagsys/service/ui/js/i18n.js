// UI text in English and Chinese. The choice is kept in localStorage (it is no secret).

import { MESSAGES } from "./messages.js";

const LANG_ITEM = "tagsys.lang";
export const LANGUAGES = [
  ["en", "English"],
  ["zh", "中文"],
];

function initial() {
  const saved = localStorage.getItem(LANG_ITEM);
  if (saved && MESSAGES[saved]) return saved;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
}

let current = initial();

export function language() {
  return current;
}

export function setLanguage(lang) {
  if (!MESSAGES[lang]) return;
  current = lang;
  localStorage.setItem(LANG_ITEM, lang);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
}

/** t("runs.title"), t("tags.count", {n: 3}): the text in the current language. */
export function t(key, vars) {
  const text = MESSAGES[current][key] ?? MESSAGES.en[key] ?? key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}
