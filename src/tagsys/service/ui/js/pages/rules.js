// Rule editor: a tag's details and rules (visual builder and JSON side by side, in sync),
// live validation at each condition, preview, save as a new version, versions with their
// changes and revert.

import { ApiError, get, patch, post } from "../api.js";
import { add, announce, clear, debounce, field, fill, formatNumber, formatTime, h } from "../dom.js";
import { language, t } from "../i18n.js";
import { forgetTags, loadTags } from "../tagstore.js";
import { RuleBuilder } from "./builder.js";

// What was being edited when the page was left: restored when the same page is drawn again
// in place (a change of language), not when it is opened anew.
let draft = null;

export function render(main, { params, keep }) {
  const editor = new RuleEditor(main, params[0] || null);
  editor.start(keep && draft && draft.tagParam === (params[0] || null) ? draft : null);
  return () => {
    draft = editor.draft();
    editor.stop();
  };
}

class RuleEditor {
  constructor(main, tagParam) {
    this.main = main;
    this.tagParam = tagParam;
    this.tagId = tagParam && tagParam !== "new" ? Number(tagParam) : null;
    this.tag = null;
    this.validateSoon = debounce(() => this.validate(), 300);
    this.readJsonSoon = debounce(() => this.readJson(), 400);
    this.validation = 0;
    this.alive = true;
  }

  stop() {
    this.alive = false;
    this.validateSoon.cancel();
    this.readJsonSoon.cancel();
  }

  /** The unsaved state of the page. */
  draft() {
    if (!this.builder || !this.name) return null;
    return {
      tagParam: this.tagParam,
      version: this.tag ? this.tag.version : null,
      rules: structuredClone(this.builder.rules),
      name: this.name.value,
      category: this.category.value,
      description: this.description.value,
      active: this.active.checked,
      comment: this.comment.value,
    };
  }

  restore(saved) {
    this.name.value = saved.name;
    this.category.value = saved.category;
    this.description.value = saved.description;
    this.active.checked = saved.active;
    this.comment.value = saved.comment;
    return saved.rules;
  }

  async start(saved) {
    const status = h("p", { class: "muted", role: "status" }, t("common.loading"));
    this.head = h("div", { class: "page-head" }, h("h1", null, t("rules.title")));
    add(this.main, this.head, status);
    try {
      const [tags, fields, operators, categories, tag] = await Promise.all([
        loadTags(),
        get("/api/v1/lake/fields"),
        get("/api/v1/rules/operators"),
        get("/api/v1/categories"),
        this.tagId ? get(`/api/v1/tags/${this.tagId}`) : Promise.resolve(null),
      ]);
      this.tags = tags;
      this.categories = categories.categories;
      this.tag = tag ? tag.tag : null;
      this.builder = new RuleBuilder({ fields: fields.fields, operators: operators.operators, onChange: () => this.edited() });
    } catch (exc) {
      status.textContent = exc.message;
      status.className = "error";
      return;
    }
    if (!this.alive) return;
    status.remove();
    this.layout();
    const version = this.tag ? this.tag.version : null;
    const kept = saved && saved.version === version ? this.restore(saved) : null;
    const rules = kept || (this.tag ? structuredClone(this.tag.rules) : [this.builder.newGroup()]);
    this.builder.setRules(rules.length ? rules : [this.builder.newGroup()]);
    this.writeJson();
    this.validate();
    if (this.tag) this.loadVersions();
  }

  layout() {
    add(this.head, this.picker());
    add(this.main, this.details());
    this.json = h("textarea", {
      id: "rule-json",
      class: "code",
      spellcheck: "false",
      rows: 16,
      "aria-describedby": "rule-json-error",
      onInput: () => this.readJsonSoon(),
    });
    this.jsonError = h("p", { id: "rule-json-error", class: "error", role: "alert" });
    this.summary = h("div", { id: "rule-problems", "aria-live": "polite" });
    this.previewBox = h("section", { id: "preview", class: "card", "aria-live": "polite", hidden: true });
    this.versionsBox = h("section", { id: "versions", class: "card", hidden: !this.tag });
    add(
      this.main,
      h(
        "div",
        { class: "editor" },
        h("section", { class: "card", "aria-labelledby": "builder-title" }, h("h2", { id: "builder-title" }, t("rules.builder")), this.builder.el),
        h(
          "div",
          { class: "side" },
          this.actions(),
          this.previewBox,
          h(
            "section",
            { class: "card", "aria-labelledby": "json-title" },
            h("h2", { id: "json-title" }, h("label", { for: "rule-json" }, t("rules.json"))),
            this.json,
            this.jsonError,
          ),
        ),
      ),
      this.versionsBox,
    );
  }

  picker() {
    const select = h(
      "select",
      { id: "tag-picker", onChange: (e) => (location.hash = `#/rules/${e.target.value}`) },
      h("option", { value: "new", selected: !this.tag }, t("rules.newTag")),
      this.tags.map((tag) => h("option", { value: tag.tag_id, selected: this.tag && tag.tag_id === this.tag.tag_id }, `${tag.name} (#${tag.tag_id})`)),
    );
    return h("div", { class: "field inline" }, h("label", { for: "tag-picker" }, t("rules.tag")), select);
  }

  details() {
    const tag = this.tag || { name: "", category: this.categories[0]?.name ?? "", description: "", active: true };
    this.name = h("input", { type: "text", value: tag.name, required: true, maxlength: 200 });
    this.category = h(
      "select",
      null,
      this.categories.map((c) => h("option", { value: c.name, selected: c.name === tag.category }, c.name)),
    );
    this.description = h("input", { type: "text", value: tag.description ?? "" });
    this.active = h("input", { type: "checkbox", id: "tag-active", checked: tag.active });
    const version = this.tag ? h("span", { class: "muted", id: "tag-version" }, t("rules.version", { n: this.tag.version })) : null;
    return h(
      "section",
      { class: "card details", "aria-labelledby": "details-title" },
      h("div", { class: "card-head" }, h("h2", { id: "details-title" }, this.tag ? t("rules.details", { name: this.tag.name }) : t("rules.newTag")), version),
      h(
        "div",
        { class: "row" },
        field(t("rules.name"), this.name),
        field(t("rules.category"), this.category),
        field(t("rules.description"), this.description),
        h("div", { class: "field inline" }, this.active, h("label", { for: "tag-active" }, t("rules.active"))),
      ),
    );
  }

  actions() {
    this.comment = h("input", { type: "text", maxlength: 2000 });
    this.saveStatus = h("p", { id: "save-status", role: "status" });
    const runLink = this.tag ? h("a", { class: "button secondary", href: `#/runs/new/${this.tag.tag_id}` }, t("rules.runTag")) : null;
    return h(
      "section",
      { class: "card actions-bar", "aria-label": t("rules.check") },
      this.summary,
      h(
        "div",
        { class: "row" },
        field(t("rules.comment"), this.comment),
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", class: "secondary", id: "preview-button", onClick: () => this.preview() }, t("rules.preview")),
          h("button", { type: "button", class: "primary", id: "save-button", onClick: () => this.save() }, t("rules.save")),
          runLink,
        ),
      ),
      this.saveStatus,
    );
  }

  // --- keeping the builder, the JSON and the problems in sync ---------------------------
  edited() {
    this.writeJson();
    this.previewBox.hidden = true;
    this.validateSoon();
  }

  writeJson() {
    this.json.value = JSON.stringify(this.builder.rules, null, 2);
    this.jsonError.textContent = "";
    this.json.removeAttribute("aria-invalid");
  }

  readJson() {
    let parsed;
    try {
      parsed = JSON.parse(this.json.value);
    } catch (exc) {
      this.jsonError.textContent = t("rules.jsonInvalid", { message: exc.message });
      this.json.setAttribute("aria-invalid", "true");
      return;
    }
    const rules = Array.isArray(parsed) ? parsed : [parsed];
    this.jsonError.textContent = "";
    this.json.removeAttribute("aria-invalid");
    this.builder.setRules(rules);
    this.previewBox.hidden = true;
    this.validateSoon();
  }

  async validate() {
    const ticket = ++this.validation;
    let found;
    try {
      found = await post("/api/v1/rules/validate", { rules: this.builder.rules });
    } catch (exc) {
      found = { problems: [{ location: "rules", problem: exc.message, severity: "error" }] };
    }
    if (ticket !== this.validation || !this.alive) return;
    this.showProblems(found.problems);
  }

  showProblems(problems) {
    this.problems = problems;
    this.builder.setProblems(problems);
    const errors = problems.filter((p) => p.severity !== "warning");
    clear(this.summary);
    if (!problems.length) {
      add(this.summary, h("p", { class: "ok-text" }, t("rules.valid")));
      return;
    }
    add(this.summary, 
      h("p", { class: errors.length ? "error" : "warning" }, t("rules.problemCount", { n: errors.length, w: problems.length - errors.length })),
      h(
        "ul",
        { class: "problem-list" },
        problems.map((p) =>
          h(
            "li",
            null,
            h("button", { type: "button", class: "link", onClick: () => this.builder.focusLocation(p.location) }, p.location),
            ` ${p.problem}`,
          ),
        ),
      ),
    );
  }

  // --- preview ----------------------------------------------------------------------------
  combined() {
    const rules = this.builder.rules;
    return rules.length === 1 ? rules[0] : { logic: "OR", conditions: rules };
  }

  async preview() {
    const box = this.previewBox;
    box.hidden = false;
    fill(box, h("h2", null, t("rules.previewTitle")), h("p", { class: "muted" }, t("rules.previewing")));
    const body = { rule: this.combined(), sample_size: 10 };
    if (this.tag) body.tag_id = this.tag.tag_id;
    let result;
    try {
      result = (await post("/api/v1/rules/preview", body)).preview;
    } catch (exc) {
      this.previewFailed(box, exc);
      return;
    }
    this.showPreview(box, result);
  }

  previewFailed(box, exc) {
    fill(box, h("h2", null, t("rules.previewTitle")), h("p", { class: "error" }, exc.message));
    if (exc instanceof ApiError && Array.isArray(exc.details)) {
      const single = this.builder.rules.length === 1;
      this.showProblems(
        exc.details.map((d) => ({
          location: single ? d.location.replace(/^rule/, "rules[0]") : d.location.replace(/^rule\.conditions/, "rules"),
          problem: d.problem,
          severity: "error",
        })),
      );
    }
  }

  showPreview(box, result) {
    const lang = language();
    const single = this.builder.rules.length === 1;
    const counts = new Map(
      result.conditions.map((c) => [single ? c.location.replace(/^rule/, "rules[0]") : c.location.replace(/^rule\.conditions/, "rules"), c.matched]),
    );
    this.builder.setCounts(counts);
    const facts = [
      [t("rules.matched"), formatNumber(result.matched, lang), "preview-matched"],
      [t("rules.population"), formatNumber(result.users, lang), "preview-users"],
    ];
    if (result.tag_id !== null) {
      facts.push(
        [t("rules.stored"), formatNumber(result.stored, lang), "preview-stored"],
        [t("rules.added"), formatNumber(result.added, lang), "preview-added"],
        [t("rules.removed"), formatNumber(result.removed, lang), "preview-removed"],
      );
    }
    fill(box, 
      h("h2", null, t("rules.previewTitle")),
      h("dl", { class: "facts" }, facts.map(([label, value, id]) => [h("dt", null, label), h("dd", { id }, value)])),
      h("p", { class: "muted" }, t("rules.previewNote", { as_of: result.as_of, s: result.seconds })),
      h("h3", null, t("rules.perCondition")),
      h(
        "table",
        { class: "data compact" },
        h("thead", null, h("tr", null, h("th", { scope: "col" }, t("rules.location")), h("th", { scope: "col" }, t("rules.aloneCount")))),
        h("tbody", null, [...counts].map(([where, n]) => h("tr", null, h("td", null, where), h("td", { class: "num" }, formatNumber(n, lang))))),
      ),
      result.sample.length ? h("p", null, `${t("rules.sample")}: `, result.sample.map((u, i) => [i ? ", " : "", h("a", { href: `#/users/${encodeURIComponent(u)}` }, u)])) : null,
    );
    announce(t("rules.previewDone", { n: formatNumber(result.matched, lang) }));
  }

  // --- save ---------------------------------------------------------------------------------
  async save() {
    this.saveStatus.className = "";
    this.saveStatus.textContent = t("rules.saving");
    const body = {
      name: this.name.value.trim(),
      category: this.category.value,
      description: this.description.value.trim() || null,
      active: this.active.checked,
      rules: this.builder.rules,
    };
    if (this.comment.value.trim()) body.comment = this.comment.value.trim();
    let saved;
    try {
      saved = this.tag
        ? await patch(`/api/v1/tags/${this.tag.tag_id}`, { ...body, expected_version: this.tag.version })
        : await post("/api/v1/tags", body);
    } catch (exc) {
      this.saveFailed(exc);
      return;
    }
    forgetTags();
    this.saveStatus.className = "ok-text";
    this.saveStatus.textContent = t("rules.saved", { n: saved.tag.version });
    announce(this.saveStatus.textContent);
    if (!this.tag) {
      location.hash = `#/rules/${saved.tag.tag_id}`;
      return;
    }
    this.tag = saved.tag;
    this.comment.value = "";
    document.getElementById("tag-version").textContent = t("rules.version", { n: this.tag.version });
    this.loadVersions();
  }

  saveFailed(exc) {
    this.saveStatus.className = "error";
    if (exc.code === "version_conflict") {
      this.saveStatus.textContent = t("rules.conflict", { n: exc.details?.current_version ?? "?" });
      return;
    }
    this.saveStatus.textContent = exc.message;
    if (Array.isArray(exc.details) && exc.details.some((d) => d.location.startsWith("rules"))) {
      this.showProblems(exc.details.map((d) => ({ location: d.location, problem: d.problem, severity: "error" })));
    }
  }

  // --- versions -------------------------------------------------------------------------
  async loadVersions() {
    const box = this.versionsBox;
    box.hidden = false;
    let versions;
    try {
      versions = (await get(`/api/v1/tags/${this.tag.tag_id}/versions`)).versions;
    } catch (exc) {
      fill(box, h("h2", null, t("rules.versions")), h("p", { class: "error" }, exc.message));
      return;
    }
    const lang = language();
    const rows = [...versions].reverse().map((v) => this.versionRow(v, lang));
    fill(box, 
      h("h2", null, t("rules.versions")),
      h(
        "table",
        { class: "data" },
        h(
          "thead",
          null,
          h("tr", null, ["rules.versionCol", "rules.action", "rules.actor", "rules.when", "rules.commentCol", "common.actions"].map((k) => h("th", { scope: "col" }, t(k)))),
        ),
        h("tbody", null, rows),
      ),
    );
  }

  versionRow(v, lang) {
    const current = v.version === this.tag.version;
    const detail = h("tr", { class: "detail", hidden: true }, h("td", { colspan: 6 }));
    const buttons = [];
    if (v.version > 1) {
      buttons.push(h("button", { type: "button", class: "secondary", onClick: () => this.showDiff(v.version, detail) }, t("rules.changes", { n: v.version })));
    }
    if (!current) {
      buttons.push(h("button", { type: "button", class: "secondary", onClick: () => this.askRevert(v.version, detail) }, t("rules.revertTo", { n: v.version })));
    }
    const row = h(
      "tr",
      { dataset: { version: v.version } },
      h("td", null, `v${v.version}`, current ? h("span", { class: "badge ok" }, t("rules.current")) : null),
      h("td", null, v.action),
      h("td", null, v.actor),
      h("td", null, formatTime(v.created_at, lang)),
      h("td", null, v.comment ?? ""),
      h("td", { class: "actions" }, buttons),
    );
    return [row, detail];
  }

  async showDiff(version, detail) {
    const cell = clear(detail.firstChild);
    detail.hidden = false;
    try {
      const found = await get(`/api/v1/tags/${this.tag.tag_id}/diff?from=${version - 1}&to=${version}`);
      add(cell, 
        h("p", null, t("rules.diffTitle", { from: version - 1, to: version })),
        h("ul", { class: "diff" }, found.changes.map((c) => diffLine(c))),
      );
    } catch (exc) {
      add(cell, h("p", { class: "error" }, exc.message));
    }
  }

  askRevert(version, detail) {
    const cell = clear(detail.firstChild);
    detail.hidden = false;
    const confirm = h("button", { type: "button", class: "danger", onClick: () => this.revert(version, cell) }, t("rules.confirmRevert", { n: version }));
    add(cell, 
      h("p", null, t("rules.revertQuestion", { n: version })),
      h("div", { class: "actions" }, confirm, h("button", { type: "button", class: "secondary", onClick: () => (detail.hidden = true) }, t("common.cancel"))),
    );
    confirm.focus();
  }

  async revert(version, cell) {
    try {
      const saved = await post(`/api/v1/tags/${this.tag.tag_id}/revert`, { version, expected_version: this.tag.version });
      this.tag = saved.tag;
    } catch (exc) {
      add(cell, h("p", { class: "error" }, exc.message));
      return;
    }
    forgetTags();
    announce(t("rules.reverted", { n: version, v: this.tag.version }));
    document.getElementById("tag-version").textContent = t("rules.version", { n: this.tag.version });
    this.builder.setRules(structuredClone(this.tag.rules));
    this.writeJson();
    this.validate();
    this.active.checked = this.tag.active;
    this.name.value = this.tag.name;
    this.loadVersions();
  }
}

function diffLine(change) {
  const show = (v) => JSON.stringify(v);
  if (change.change === "added") return h("li", { class: "added" }, `+ ${change.path}: ${show(change.after)}`);
  if (change.change === "removed") return h("li", { class: "removed" }, `− ${change.path}: ${show(change.before)}`);
  return h("li", { class: "changed" }, `~ ${change.path}: ${show(change.before)} → ${show(change.after)}`);
}
