// Users: look a user up: current tags, the history of entering and leaving tags, and why a
// tag does or does not apply (explain: each condition's value and result).

import { ApiError, get, query } from "../api.js";
import { add, field, fill, formatTime, h, shortId } from "../dom.js";
import { language, t } from "../i18n.js";
import { loadTags, tagName } from "../tagstore.js";

export function render(main, { params }) {
  const userId = params[0] || "";
  const input = h("input", { type: "search", id: "user-id", value: userId, required: true, maxlength: 100 });
  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      onSubmit: (e) => {
        e.preventDefault();
        if (input.value.trim()) location.hash = `#/users/${encodeURIComponent(input.value.trim())}`;
      },
    },
    field(t("users.userId"), input),
    h("button", { type: "submit", class: "primary" }, t("users.lookUp")),
  );
  add(main, h("h1", null, t("users.title")), form);
  if (!userId) {
    input.focus();
    return;
  }
  const current = h("section", { class: "card", id: "user-tags", "aria-labelledby": "current-title" }, h("h2", { id: "current-title" }, t("users.current", { id: userId })));
  const explain = h("section", { class: "card", id: "user-explain", "aria-labelledby": "explain-title" }, h("h2", { id: "explain-title" }, t("users.explain")));
  const history = h("section", { class: "card", id: "user-history", "aria-labelledby": "history-title" }, h("h2", { id: "history-title" }, t("users.history")));
  add(main, current, explain, history);
  loadTags()
    .then((tags) => {
      currentTags(current, userId);
      explainForm(explain, userId, tags);
      historyTable(history, userId, tags);
    })
    .catch((exc) => add(current, h("p", { class: "error" }, exc.message)));
}

async function currentTags(section, userId) {
  let found;
  try {
    found = await get(`/api/v1/users/${encodeURIComponent(userId)}/tags`);
  } catch (exc) {
    const text = exc instanceof ApiError && exc.status === 404 ? t("users.never") : exc.message;
    add(section, h("p", { class: exc.status === 404 ? "muted" : "error" }, text));
    return;
  }
  const lang = language();
  add(section, 
    found.tags.length
      ? h(
          "ul",
          { class: "chips" },
          found.tags.map((tag) => h("li", { dataset: { tag: tag.tag_id } }, h("a", { href: `#/rules/${tag.tag_id}` }, tag.tag_name ?? `#${tag.tag_id}`), h("span", { class: "muted" }, ` ${tag.tag_category ?? ""}`))),
        )
      : h("p", { class: "muted" }, t("users.noTags")),
    h("p", { class: "muted" }, t("users.times", { created: formatTime(found.created_time, lang), updated: formatTime(found.updated_time, lang) })),
  );
}

function historyTable(section, userId, tags) {
  const body = h("tbody");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, t("common.more"));
  const names = (ids) => (ids && ids.length ? ids.map((id) => tagName(tags, id)).join(", ") : "—");
  let cursor = null;
  const load = async () => {
    try {
      const page = await get(`/api/v1/users/${encodeURIComponent(userId)}/history${query({ limit: 20, cursor })}`);
      const lang = language();
      add(body, 
        page.changes.map((c) =>
          h(
            "tr",
            null,
            h("td", null, formatTime(c.written_at, lang)),
            h("td", null, h("a", { href: `#/runs/${c.run_id}` }, shortId(c.run_id)), c.mode ? ` ${t(`mode.${c.mode}`)}` : ""),
            h("td", { class: "up" }, names(c.entered)),
            h("td", { class: "down" }, names(c.exited)),
            h("td", null, c.tag_ids === null ? t("users.rowRemoved") : names(c.tag_ids)),
          ),
        ),
      );
      if (!body.children.length) add(body, h("tr", null, h("td", { colspan: 5, class: "muted" }, t("users.noHistory"))));
      cursor = page.next_cursor;
      more.hidden = !cursor;
    } catch (exc) {
      add(body, h("tr", null, h("td", { colspan: 5, class: "error" }, exc.message)));
    }
  };
  more.addEventListener("click", load);
  const cols = ["users.when", "users.run", "users.entered", "users.exited", "users.after"];
  add(section, h("table", { class: "data" }, h("thead", null, h("tr", null, cols.map((k) => h("th", { scope: "col" }, t(k))))), body), more);
  load();
}

function explainForm(section, userId, tags) {
  const tag = h("select", { id: "explain-tag" }, tags.map((tg) => h("option", { value: tg.tag_id }, `${tg.name} (#${tg.tag_id})`)));
  const asOf = h("input", { type: "date", id: "explain-as-of" });
  const out = h("div", { id: "explain-result", "aria-live": "polite" });
  const submit = async (event) => {
    event.preventDefault();
    fill(out, h("p", { class: "muted" }, t("common.working")));
    try {
      const found = await get(`/api/v1/users/${encodeURIComponent(userId)}/explain${query({ tag_id: tag.value, as_of: asOf.value })}`);
      fill(out, explanation(found.explanation));
    } catch (exc) {
      fill(out, h("p", { class: "error" }, exc.message));
    }
  };
  add(section, 
    h(
      "form",
      { class: "filters", onSubmit: submit },
      field(t("users.tag"), tag),
      field(t("users.asOf"), asOf),
      h("button", { type: "submit", class: "primary" }, t("users.explainButton")),
    ),
    out,
  );
}

function explanation(e) {
  const verdict = e.applies ? t("users.applies", { name: e.tag_name }) : t("users.notApplies", { name: e.tag_name });
  if (!e.active) return h("p", { class: "muted" }, t("users.inactive"));
  return h(
    "div",
    null,
    h("p", { class: e.applies ? "ok-text verdict" : "verdict" }, verdict, h("span", { class: "muted" }, ` (${t("users.asOfShort", { d: e.as_of })})`)),
    e.rules.length ? null : h("p", { class: "muted" }, t("users.noRules")),
    e.rules.map((rule, i) => h("div", { class: "explain-rule" }, h("h3", null, t("users.rule", { n: i + 1, id: rule.rule_id })), h("ul", { class: "tree" }, outcome(rule.root)))),
  );
}

function verdictMark(result) {
  return h("span", { class: `mark ${result ? "yes" : "no"}` }, result ? `✓ ${t("common.true")}` : `✗ ${t("common.false")}`);
}

function outcome(node) {
  if (node.children) {
    return h("li", null, h("span", { class: "logic" }, t(`builder.logic.${node.logic}`)), " ", verdictMark(node.result), h("ul", null, node.children.map(outcome)));
  }
  const shown = (v) => (v === null || v === undefined ? "null" : JSON.stringify(v));
  return h(
    "li",
    { dataset: { loc: node.location } },
    h("code", null, `${node.field} ${node.operator}${node.value === null || node.value === undefined ? "" : ` ${shown(node.value)}`}`),
    " — ",
    t("users.valueIs", { column: node.column, value: node.parsed ? `${node.parsed} (${shown(node.actual)})` : shown(node.actual) }),
    " ",
    verdictMark(node.result),
  );
}
