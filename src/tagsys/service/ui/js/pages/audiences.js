// Audiences: compose an expression of tags (and / or / not), see its size live, save it,
// export it; the saved audiences with their sizes.

import { del, get, pooled, post, put } from "../api.js";
import { add, announce, debounce, field, fill, formatNumber, formatTime, h } from "../dom.js";
import { language, t } from "../i18n.js";
import { sparkline } from "../sparkline.js";
import { loadTags } from "../tagstore.js";

const OPS = ["and", "or", "not"];

// The expression being composed, kept when the page is drawn again in place (a change of
// language).
let draft = null;

export function render(main, { keep }) {
  const page = new AudiencePage(main);
  page.start(keep ? draft : null);
  return () => {
    if (page.root !== undefined) draft = { root: structuredClone(page.root), name: page.name?.value ?? "", description: page.description?.value ?? "" };
    page.stop();
  };
}

function opOf(node) {
  if (node && typeof node === "object" && !Array.isArray(node)) return OPS.find((op) => op in node) || null;
  return null;
}

function childrenOf(node) {
  const op = opOf(node);
  if (op === "not") return [node.not];
  return Array.isArray(node[op]) ? node[op] : [];
}

class AudiencePage {
  constructor(main) {
    this.main = main;
    this.alive = true;
    this.countSoon = debounce(() => this.count(), 400);
    this.readJsonSoon = debounce(() => this.readJson(), 400);
    this.ticket = 0;
    this.saved = [];
  }

  stop() {
    this.alive = false;
    this.countSoon.cancel();
    this.readJsonSoon.cancel();
  }

  async start(saved) {
    add(this.main, h("h1", null, t("aud.title")));
    try {
      this.tags = (await loadTags()).filter((tag) => !tag.deleted);
    } catch (exc) {
      add(this.main, h("p", { class: "error" }, exc.message));
      return;
    }
    this.root = saved ? saved.root : { and: this.tags.length ? [this.tags[0].tag_id] : [] };
    this.layout();
    if (saved) {
      this.name.value = saved.name;
      this.description.value = saved.description;
    }
    this.edited();
    this.loadSaved();
  }

  layout() {
    this.tree = h("div", { class: "builder", id: "audience-builder" });
    this.json = h("textarea", { id: "audience-json", class: "code", rows: 10, spellcheck: "false", "aria-describedby": "audience-json-error", onInput: () => this.readJsonSoon() });
    this.jsonError = h("p", { id: "audience-json-error", class: "error", role: "alert" });
    this.size = h("div", { id: "audience-size", "aria-live": "polite" });
    this.name = h("input", { type: "text", id: "audience-name", maxlength: 200 });
    this.description = h("input", { type: "text", id: "audience-description" });
    this.saveStatus = h("p", { role: "status", id: "audience-save-status" });
    this.list = h("div", { id: "audience-list" });
    this.exportBox = h("div", { id: "audience-export" });
    add(this.main, 
      h(
        "div",
        { class: "editor" },
        h("section", { class: "card", "aria-labelledby": "compose-title" }, h("h2", { id: "compose-title" }, t("aud.compose")), this.tree),
        h(
          "section",
          { class: "card", "aria-labelledby": "asize-title" },
          h("h2", { id: "asize-title" }, t("aud.size")),
          this.size,
          h("h2", { id: "ajson-title" }, h("label", { for: "audience-json" }, t("aud.json"))),
          this.json,
          this.jsonError,
        ),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "asave-title" },
        h("h2", { id: "asave-title" }, t("aud.save")),
        h("div", { class: "row" }, field(t("aud.name"), this.name), field(t("aud.description"), this.description)),
        h("div", { class: "actions" }, h("button", { type: "button", class: "primary", id: "audience-save", onClick: () => this.save() }, t("aud.saveButton"))),
        this.saveStatus,
      ),
      h("section", { class: "card", "aria-labelledby": "aexport-title" }, h("h2", { id: "aexport-title" }, t("aud.export")), this.exportForm()),
      h("section", { class: "card", "aria-labelledby": "asaved-title" }, h("h2", { id: "asaved-title" }, t("aud.saved")), this.list),
    );
  }

  // --- the composer ------------------------------------------------------------------------
  renderTree() {
    const focused = document.activeElement && this.tree.contains(document.activeElement) ? document.activeElement.id : null;
    fill(this.tree, this.node(this.root, "e", (next) => (this.root = next), null));
    if (focused) document.getElementById(focused)?.focus();
  }

  changed(structural) {
    if (structural) this.renderTree();
    this.edited(false);
  }

  edited(render = true) {
    if (render) this.renderTree();
    this.json.value = JSON.stringify(this.root, null, 2);
    this.jsonError.textContent = "";
    this.countSoon();
  }

  readJson() {
    try {
      this.root = JSON.parse(this.json.value);
    } catch (exc) {
      this.jsonError.textContent = t("rules.jsonInvalid", { message: exc.message });
      return;
    }
    this.jsonError.textContent = "";
    this.renderTree();
    this.countSoon();
  }

  node(node, id, replace, remove) {
    const op = opOf(node);
    if (!op) return this.leaf(node, id, replace, remove);
    const select = h(
      "select",
      { id: `${id}-op`, onChange: (e) => this.switchOp(node, e.target.value, replace) },
      OPS.map((o) => h("option", { value: o, selected: o === op }, t(`aud.op.${o}`))),
    );
    const kids = childrenOf(node);
    const list = kids.map((child, i) =>
      h(
        "li",
        null,
        this.node(
          child,
          `${id}-${i}`,
          (next) => (op === "not" ? (node.not = next) : (node[op][i] = next)),
          op === "not" ? null : () => node[op].splice(i, 1),
        ),
      ),
    );
    const adders =
      op === "not"
        ? []
        : [
            h("button", { type: "button", class: "secondary", onClick: () => this.add(node[op], this.tags[0]?.tag_id ?? 1, `${id}-${kids.length}-tag`) }, t("aud.addTag")),
            h("button", { type: "button", class: "secondary", onClick: () => this.add(node[op], { or: [this.tags[0]?.tag_id ?? 1] }, `${id}-${kids.length}-op`) }, t("aud.addGroup")),
          ];
    return h(
      "fieldset",
      { class: "node group" },
      h("legend", null, t("aud.group")),
      h("div", { class: "group-head" }, h("label", { for: select.id }, t("aud.combine")), select),
      h("ol", { class: "children" }, list),
      h(
        "div",
        { class: "actions" },
        adders,
        remove ? h("button", { type: "button", class: "danger", onClick: () => { remove(); this.changed(true); } }, t("aud.removeGroup")) : null,
      ),
    );
  }

  add(list, item, focusId) {
    list.push(item);
    this.changed(true);
    document.getElementById(focusId)?.focus();
  }

  switchOp(node, op, replace) {
    const kids = childrenOf(node);
    let next;
    if (op === "not") next = { not: kids.length === 1 ? kids[0] : { and: kids } };
    else next = { [op]: opOf(node) === "not" ? [node.not] : kids };
    replace(next);
    this.changed(true);
  }

  leaf(value, id, replace, remove) {
    const known = this.tags.some((tag) => tag.tag_id === value || tag.name === value);
    const select = h(
      "select",
      {
        id: `${id}-tag`,
        onChange: (e) => {
          replace(Number(e.target.value));
          this.changed(false);
        },
      },
      known ? null : h("option", { value: String(value), selected: true }, String(value)),
      this.tags.map((tag) => h("option", { value: tag.tag_id, selected: tag.tag_id === value || tag.name === value }, `${tag.name} (#${tag.tag_id})`)),
    );
    return h(
      "div",
      { class: "node condition" },
      h("div", { class: "condition-row" }, h("div", { class: "field" }, h("label", { for: select.id }, t("aud.tag")), select),
        remove ? h("button", { type: "button", class: "icon danger", "aria-label": t("aud.removeTag"), title: t("aud.removeTag"), onClick: () => { remove(); this.changed(true); } }, "✕") : null),
    );
  }

  // --- size, live ------------------------------------------------------------------------
  async count() {
    const ticket = ++this.ticket;
    fill(this.size, h("p", { class: "muted" }, t("common.working")));
    let found;
    try {
      found = await post("/api/v1/audiences/count", { expression: this.root });
    } catch (exc) {
      if (ticket !== this.ticket) return;
      const where = exc.details && exc.details.path ? ` (${exc.details.path})` : "";
      fill(this.size, h("p", { class: "error" }, `${exc.message}${where}`));
      return;
    }
    if (ticket !== this.ticket || !this.alive) return;
    const lang = language();
    fill(this.size, 
      h("p", { class: "big" }, h("span", { id: "audience-count" }, formatNumber(found.count, lang)), ` ${t("aud.users")}`),
      h(
        "ul",
        { class: "plain", id: "audience-operands" },
        (found.operands || []).map((o) => h("li", null, `${this.describe(o.expression)}: ${formatNumber(o.count, lang)}`)),
      ),
      found.index && found.index.published_at ? h("p", { class: "muted" }, t("aud.asOf", { when: formatTime(found.index.published_at, lang) })) : null,
    );
    announce(t("aud.sized", { n: formatNumber(found.count, lang) }));
  }

  /** An expression in words: tag names joined by and / or / not. */
  describe(expression) {
    const op = opOf(expression);
    if (!op) {
      const tag = this.tags.find((x) => x.tag_id === expression || x.name === expression);
      return tag ? tag.name : String(expression);
    }
    if (op === "not") return `${t("aud.word.not")} ${this.describe(expression.not)}`;
    const parts = childrenOf(expression).map((child) => this.describe(child));
    return `(${parts.join(` ${t(`aud.word.${op}`)} `)})`;
  }

  // --- saving and the saved list --------------------------------------------------------
  async save() {
    const name = this.name.value.trim();
    this.saveStatus.className = "";
    if (!name) {
      this.saveStatus.className = "error";
      this.saveStatus.textContent = t("aud.nameNeeded");
      this.name.focus();
      return;
    }
    const body = { expression: this.root, description: this.description.value.trim() || null };
    try {
      if (this.saved.some((a) => a.name === name)) await put(`/api/v1/audiences/${encodeURIComponent(name)}`, body);
      else await post("/api/v1/audiences", { name, ...body });
    } catch (exc) {
      this.saveStatus.className = "error";
      this.saveStatus.textContent = exc.message;
      return;
    }
    this.saveStatus.className = "ok-text";
    this.saveStatus.textContent = t("aud.savedAs", { name });
    this.loadSaved();
  }

  async loadSaved() {
    let found;
    try {
      found = await get("/api/v1/audiences");
    } catch (exc) {
      fill(this.list, h("p", { class: "error" }, exc.message));
      return;
    }
    this.saved = found.audiences;
    const lang = language();
    if (!this.saved.length) {
      fill(this.list, h("p", { class: "muted" }, t("aud.none")));
      return;
    }
    const cols = ["aud.name", "aud.sizeNow", "aud.trend", "aud.owner", "common.actions"];
    fill(this.list, 
      h(
        "table",
        { class: "data" },
        h("thead", null, h("tr", null, cols.map((k) => h("th", { scope: "col", class: k === "aud.sizeNow" ? "num" : null }, t(k))))),
        h(
          "tbody",
          null,
          this.saved.map((a) =>
            h(
              "tr",
              { dataset: { audience: a.name } },
              h("td", null, a.name, a.description ? h("span", { class: "muted" }, ` — ${a.description}`) : null),
              h("td", { class: "num now" }, "…"),
              h("td", { class: "trend" }),
              h("td", null, a.owner ?? "—"),
              h(
                "td",
                { class: "actions" },
                h("button", { type: "button", class: "secondary", onClick: () => this.open(a) }, t("aud.open", { name: a.name })),
                h("button", { type: "button", class: "danger", onClick: () => this.remove(a.name) }, t("aud.delete", { name: a.name })),
              ),
            ),
          ),
        ),
      ),
    );
    this.trends();
  }

  /** Each saved audience's size now, and its sizes recorded after the latest runs. */
  async trends() {
    const lang = language();
    await pooled(
      this.saved.map((a) => async () => {
        const path = `/api/v1/audiences/${encodeURIComponent(a.name)}`;
        const [now, found] = await Promise.all([get(path), get(`${path}/sizes?limit=12`)]);
        const row = this.list.querySelector(`tr[data-audience="${CSS.escape(a.name)}"]`);
        if (!row) return;
        const cell = row.querySelector("td.now");
        cell.textContent = now.count === null ? "—" : formatNumber(now.count, lang);
        if (now.problem) cell.title = now.problem;
        const sizes = found.sizes.map((x) => x.size).reverse();
        fill(row.querySelector("td.trend"), sparkline(sizes, t("aud.trendLabel", { name: a.name, n: sizes.length })));
      }),
    );
  }

  open(audience) {
    this.root = structuredClone(audience.expression);
    this.name.value = audience.name;
    this.description.value = audience.description ?? "";
    this.edited();
    this.tree.querySelector("select")?.focus();
  }

  async remove(name) {
    try {
      await del(`/api/v1/audiences/${encodeURIComponent(name)}`);
    } catch (exc) {
      this.saveStatus.className = "error";
      this.saveStatus.textContent = exc.message;
      return;
    }
    announce(t("aud.deleted", { name }));
    this.loadSaved();
  }

  exportForm() {
    const path = h("input", { type: "text", id: "export-path", placeholder: "audience.csv" });
    const format = h("select", { id: "export-format" }, h("option", { value: "csv" }, "CSV"), h("option", { value: "parquet" }, "Parquet"));
    const out = h("p", { role: "status", id: "export-status" });
    const submit = async (event) => {
      event.preventDefault();
      out.className = "";
      out.textContent = t("common.working");
      try {
        const answer = await post("/api/v1/audiences/export", { expression: this.root, path: path.value.trim(), format: format.value });
        out.className = "ok-text";
        out.textContent = answer.task_id ? t("aud.exportStarted", { id: answer.task_id }) : t("aud.exported", { n: formatNumber(answer.rows, language()), path: answer.path });
      } catch (exc) {
        out.className = "error";
        out.textContent = exc.message;
      }
    };
    return h(
      "form",
      { onSubmit: submit },
      h("p", { class: "muted" }, t("aud.exportIntro")),
      h("div", { class: "row" }, field(t("aud.path"), path, t("aud.pathHint")), field(t("aud.format"), format)),
      h("button", { type: "submit", class: "primary" }, t("aud.exportButton")),
      out,
    );
  }
}
