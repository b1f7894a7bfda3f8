// Small DOM helpers: element creation, formatting, timing. No framework.

const SVG_NS = "http://www.w3.org/2000/svg";

function applyAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "value" && "value" in el) {
      el.value = value;
    } else if (key === "checked" || key === "selected") {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** h("button", {onClick: f, class: "x"}, "text", child, ...) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  return append(el, children);
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  return append(el, children);
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Append children (nested arrays flattened; null, undefined and false skipped). */
export function add(el, ...children) {
  return append(el, children);
}

/** Replace an element's children. */
export function fill(el, ...children) {
  return append(clear(el), children);
}

export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

let uid = 0;
/** A fresh id for label/aria wiring. */
export function newId(prefix = "id") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled form control: <label for=id>text</label> control. */
export function field(labelText, control, hint) {
  if (!control.id) control.id = newId("f");
  const parts = [h("label", { for: control.id }, labelText), control];
  if (hint) {
    const hintId = newId("hint");
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("span", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, parts);
}

export function announce(text) {
  const region = document.getElementById("announce");
  if (!region) return;
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

export function formatNumber(value, lang) {
  if (value === null || value === undefined) return "—";
  return new Intl.NumberFormat(lang === "zh" ? "zh-CN" : "en-US").format(value);
}

export function formatSigned(value, lang) {
  if (value === null || value === undefined) return "—";
  const text = formatNumber(Math.abs(value), lang);
  if (value > 0) return `+${text}`;
  if (value < 0) return `−${text}`;
  return "0";
}

export function formatTime(iso, lang) {
  if (!iso) return "—";
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return iso;
  return new Intl.DateTimeFormat(lang === "zh" ? "zh-CN" : "en-GB", {
    dateStyle: "medium",
    timeStyle: "short",
  }).format(when);
}

export function seconds(from, to) {
  if (!from) return null;
  const end = to ? new Date(to) : new Date();
  return Math.max(0, (end - new Date(from)) / 1000);
}

/** Focus the element with this id once it is in the document again (after a re-render). */
export function refocus(id) {
  if (!id) return;
  const el = document.getElementById(id);
  if (el) el.focus();
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : "—";
}
