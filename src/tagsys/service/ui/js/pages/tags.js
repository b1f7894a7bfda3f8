// Tags: every tag with its category, status, members now, change since the previous run,
// a trend of its members over the latest runs, and the last run that computed it.

import { get, pooled } from "../api.js";
import { add, field, fill, formatNumber, formatSigned, formatTime, h } from "../dom.js";
import { language, t } from "../i18n.js";
import { sparkline } from "../sparkline.js";
import { loadTags } from "../tagstore.js";

const TREND_RUNS = 12;

export function render(main) {
  const state = { tags: [], stats: new Map(), history: new Map(), search: "", category: "" };
  const body = h("tbody");
  const status = h("p", { class: "muted", role: "status" }, t("common.loading"));
  const categorySelect = h("select", { onChange: (e) => update(state, "category", e.target.value, body) });
  const search = h("input", {
    type: "search",
    placeholder: t("tags.searchPlaceholder"),
    onInput: (e) => update(state, "search", e.target.value, body),
  });
  add(main, 
    h(
      "div",
      { class: "page-head" },
      h("h1", null, t("tags.title")),
      h("a", { class: "button primary", href: "#/rules/new" }, t("tags.new")),
    ),
    h("div", { class: "filters" }, field(t("tags.search"), search), field(t("tags.category"), categorySelect)),
    status,
    h("table", { class: "data" }, h("caption", { class: "visually-hidden" }, t("tags.title")), head(), body),
  );
  load(state, body, status, categorySelect);
}

function head() {
  const cols = ["tags.name", "tags.category", "tags.status", "tags.members", "tags.change", "tags.trend", "tags.lastRun"];
  const numeric = new Set(["tags.members", "tags.change"]);
  return h("thead", null, h("tr", null, cols.map((key) => h("th", { scope: "col", class: numeric.has(key) ? "num" : null }, t(key)))));
}

async function load(state, body, status, categorySelect) {
  try {
    const [tags, stats] = await Promise.all([loadTags({ force: true }), get("/api/v1/tags/stats")]);
    state.tags = tags;
    state.stats = new Map(stats.tags.map((s) => [s.tag_id, s]));
  } catch (exc) {
    status.textContent = exc.message;
    status.className = "error";
    return;
  }
  fillCategories(categorySelect, state.tags);
  status.textContent = t("tags.count", { n: state.tags.length });
  rows(state, body);
  await pooled(
    state.tags.map((tag) => async () => {
      const page = await get(`/api/v1/tags/${tag.tag_id}/history?limit=${TREND_RUNS}`);
      state.history.set(tag.tag_id, page.runs);
      const row = body.querySelector(`tr[data-tag="${tag.tag_id}"]`);
      if (row) row.replaceWith(tagRow(state, tag));
    }),
  );
}

function fillCategories(select, tags) {
  const names = [...new Set(tags.map((tag) => tag.category))].sort();
  fill(select, 
    h("option", { value: "" }, t("tags.allCategories")),
    names.map((name) => h("option", { value: name }, name)),
  );
}

function update(state, key, value, body) {
  state[key] = value;
  rows(state, body);
}

function visible(state) {
  const search = state.search.trim().toLowerCase();
  return state.tags.filter(
    (tag) =>
      (!state.category || tag.category === state.category) &&
      (!search || tag.name.toLowerCase().includes(search) || String(tag.tag_id) === search),
  );
}

function rows(state, body) {
  const shown = visible(state);
  fill(body, ...shown.map((tag) => tagRow(state, tag)));
  if (!shown.length) add(body, h("tr", null, h("td", { colspan: 7, class: "muted" }, t("tags.none"))));
}

function statusOf(tag) {
  if (tag.deleted) return ["deleted", "tags.deleted"];
  if (!tag.active) return ["inactive", "tags.inactive"];
  if (tag.problems && tag.problems.length) return ["failed", "tags.problems"];
  return ["ok", "tags.active"];
}

/** Members after each run, oldest first, starting with the members before the oldest one. */
function trendOf(runs) {
  const values = runs.map((r) => r.members).reverse();
  const oldest = runs[runs.length - 1];
  if (oldest && oldest.members !== null && oldest.entered !== null) {
    values.unshift(oldest.members - oldest.entered + oldest.exited);
  }
  return values;
}

function tagRow(state, tag) {
  const lang = language();
  const runs = state.history.get(tag.tag_id);
  const stat = state.stats.get(tag.tag_id);
  const [badge, label] = statusOf(tag);
  const latest = runs && runs.length ? runs[0] : null;
  const members = latest ? latest.members : null;
  const change = latest && latest.entered !== null ? latest.entered - latest.exited : null;
  const trend = runs ? trendOf(runs) : [];
  const loading = runs === undefined;
  return h(
    "tr",
    { dataset: { tag: tag.tag_id } },
    h("td", null, h("a", { href: `#/rules/${tag.tag_id}` }, tag.name), h("span", { class: "muted" }, ` #${tag.tag_id}`)),
    h("td", null, tag.category),
    h("td", null, h("span", { class: `badge ${badge}` }, t(label))),
    h("td", { class: "num" }, loading ? "…" : formatNumber(members, lang)),
    h("td", { class: `num ${change > 0 ? "up" : change < 0 ? "down" : ""}` }, loading ? "…" : formatSigned(change, lang)),
    h("td", null, loading ? "" : sparkline(trend, t("tags.trendLabel", { name: tag.name, n: runs ? runs.length : 0 }))),
    h("td", null, stat ? h("a", { href: `#/runs/${stat.run_id}` }, formatTime(stat.as_of_run_finished_at, lang)) : "—"),
  );
}
