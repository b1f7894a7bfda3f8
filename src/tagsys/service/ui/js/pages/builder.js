// The visual rule builder: a tag's rules (OR-ed), each a group of AND/OR/NOT over
// conditions and nested groups. The model is the rules' JSON itself, edited in place, so
// the JSON view and the builder can never disagree; keys the builder does not know survive.

import { add, clear, h, newId, refocus } from "../dom.js";
import { language, t } from "../i18n.js";

const LOGICS = ["AND", "OR", "NOT"];
const DEFAULTS = { scalar: null, list: [], range: [null, null], days: null, day_range: [null, null] };

export function isGroup(node) {
  return node !== null && typeof node === "object" && !Array.isArray(node) && ("logic" in node || "conditions" in node);
}

/** `rules[0].conditions[1].value` -> the location of the node a problem belongs to. */
export function parentLocation(location) {
  const trimmed = location.replace(/(\.[A-Za-z_]+|\[\d+\])$/, "");
  return trimmed === location ? "" : trimmed;
}

function safeId(location) {
  return location.replace(/[^A-Za-z0-9]+/g, "-").replace(/-$/, "");
}

export class RuleBuilder {
  /**
   * fields: [{field, table, column, kind, data_type}] from GET /api/v1/lake/fields
   * operators: [{operator, kinds, value}] from GET /api/v1/rules/operators
   * onChange(): after every edit of the model
   */
  constructor({ fields, operators, onChange }) {
    this.fields = fields.filter((f) => f.kind);
    this.byField = new Map(this.fields.map((f) => [f.field, f]));
    this.operators = operators;
    this.byOperator = new Map(operators.map((o) => [o.operator, o]));
    this.onChange = onChange;
    this.rules = [];
    this.problems = [];
    this.counts = new Map();
    this.nodes = new Map();
    this.el = h("div", { class: "builder" });
  }

  setRules(rules) {
    this.rules = rules;
    this.counts = new Map();
    this.render();
  }

  newCondition() {
    const first = this.fields[0];
    const op = first ? this.operatorsFor(first.kind)[0] : this.operators[0];
    const condition = { field: first ? first.field : "", operator: op.operator };
    if (op.value !== "none") condition.value = structuredClone(DEFAULTS[op.value]);
    return condition;
  }

  newGroup(logic = "AND") {
    return { logic, conditions: [this.newCondition()] };
  }

  operatorsFor(kind) {
    return this.operators.filter((o) => o.kinds.includes(kind));
  }

  /** The kind a condition compares as: its column's, or date for text read as dates. */
  kindOf(condition) {
    const found = this.byField.get(condition.field);
    if (!found) return "string";
    if (condition.type === "date" && found.kind === "string") return "date";
    return found.kind;
  }

  changed(structural) {
    this.counts = new Map();
    if (structural) this.render();
    else this.clearCounts();
    this.onChange();
  }

  render() {
    const focused = document.activeElement && this.el.contains(document.activeElement) ? document.activeElement.id : null;
    this.nodes = new Map();
    clear(this.el);
    this.rules.forEach((rule, index) => {
      const location = `rules[${index}]`;
      if (index > 0) add(this.el, h("p", { class: "or-between" }, t("builder.orBetween")));
      add(this.el, isGroup(rule) ? this.group(rule, location, { index }) : this.unreadable(rule, location));
    });
    add(this.el, 
      h("button", { type: "button", class: "secondary", onClick: () => this.addRule() }, t("builder.addRule")),
    );
    this.applyProblems();
    this.applyCounts();
    refocus(focused);
  }

  addRule() {
    this.rules.push(this.newGroup());
    this.changed(true);
    refocus(`b-${safeId(`rules[${this.rules.length - 1}]`)}-logic`);
  }

  unreadable(rule, location) {
    const box = h(
      "div",
      { class: "node unreadable", dataset: { loc: location } },
      h("p", null, t("builder.unreadable")),
      h("pre", null, JSON.stringify(rule)),
      h("ul", { class: "problems", id: `p-${safeId(location)}` }),
    );
    this.nodes.set(location, { el: box, control: null });
    return box;
  }

  group(group, location, { index = null, parent = null, position = 0 } = {}) {
    const base = `b-${safeId(location)}`;
    const root = index !== null;
    const title = root ? t("builder.rule", { n: index + 1 }) : t("builder.group");
    const logic = h(
      "select",
      {
        id: `${base}-logic`,
        onChange: (e) => {
          group.logic = e.target.value;
          this.changed(true);
        },
      },
      LOGICS.map((l) => h("option", { value: l, selected: group.logic === l }, t(`builder.logic.${l}`))),
    );
    if (!LOGICS.includes(group.logic)) logic.prepend(h("option", { value: group.logic ?? "", selected: true }, String(group.logic)));
    const children = Array.isArray(group.conditions) ? group.conditions : [];
    const list = h(
      "ol",
      { class: "children" },
      children.map((child, i) => {
        const where = `${location}.conditions[${i}]`;
        const item = isGroup(child)
          ? this.group(child, where, { parent: group, position: i })
          : this.condition(child, where, group, i);
        return h("li", null, item);
      }),
    );
    const problems = h("ul", { class: "problems", id: `p-${safeId(location)}` });
    const actions = h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "secondary", onClick: () => this.add(group, location, false) }, t("builder.addCondition")),
      h("button", { type: "button", class: "secondary", onClick: () => this.add(group, location, true) }, t("builder.addGroup")),
      root && this.rules.length > 1
        ? h("button", { type: "button", class: "danger", onClick: () => this.removeRule(index) }, t("builder.removeRule", { n: index + 1 }))
        : null,
      parent ? h("button", { type: "button", class: "danger", onClick: () => this.remove(parent, position) }, t("builder.removeGroup")) : null,
    );
    const legendId = `${base}-legend`;
    const box = h(
      "fieldset",
      { class: `node group ${root ? "root" : ""}`, dataset: { loc: location }, "aria-describedby": problems.id },
      h("legend", { id: legendId }, title),
      h("div", { class: "group-head" }, h("label", { for: logic.id }, t("builder.logic")), logic, h("span", { class: "count", "aria-live": "off" })),
      list,
      actions,
      problems,
    );
    this.nodes.set(location, { el: box, control: logic });
    return box;
  }

  add(group, location, nested) {
    if (!Array.isArray(group.conditions)) group.conditions = [];
    group.conditions.push(nested ? this.newGroup("OR") : this.newCondition());
    this.changed(true);
    const where = `${location}.conditions[${group.conditions.length - 1}]`;
    refocus(`b-${safeId(where)}-${nested ? "logic" : "field"}`);
  }

  remove(parent, position) {
    parent.conditions.splice(position, 1);
    this.changed(true);
  }

  removeRule(index) {
    this.rules.splice(index, 1);
    this.changed(true);
  }

  condition(condition, location, parent, position) {
    const base = `b-${safeId(location)}`;
    const kind = this.kindOf(condition);
    const known = this.byField.get(condition.field);
    const fieldSelect = this.fieldSelect(condition, `${base}-field`, known);
    const operatorSelect = this.operatorSelect(condition, `${base}-op`, kind);
    const operator = this.byOperator.get(condition.operator);
    const problems = h("ul", { class: "problems", id: `p-${safeId(location)}` });
    const parts = [
      h("div", { class: "field" }, h("label", { for: fieldSelect.id }, t("builder.field")), fieldSelect),
      h("div", { class: "field" }, h("label", { for: operatorSelect.id }, t("builder.operator")), operatorSelect),
      operator ? this.valueEditor(condition, base, kind, operator.value) : null,
      known && known.kind === "string" ? this.asDate(condition, base) : null,
      h("span", { class: "count" }),
      h(
        "button",
        { type: "button", class: "icon danger", "aria-label": t("builder.removeCondition"), title: t("builder.removeCondition"), onClick: () => this.remove(parent, position) },
        "✕",
      ),
    ];
    const box = h(
      "div",
      { class: "node condition", role: "group", "aria-label": t("builder.conditionLabel", { n: position + 1 }), dataset: { loc: location } },
      h("div", { class: "condition-row" }, parts),
      problems,
    );
    this.nodes.set(location, { el: box, control: fieldSelect });
    return box;
  }

  fieldSelect(condition, id, known) {
    const tables = new Map();
    for (const f of this.fields) {
      if (!tables.has(f.table)) tables.set(f.table, []);
      tables.get(f.table).push(f);
    }
    const select = h(
      "select",
      { id, onChange: (e) => this.setField(condition, e.target.value) },
      [...tables].map(([table, fields]) =>
        h(
          "optgroup",
          { label: table },
          fields.map((f) =>
            h("option", { value: f.field, selected: f.field === condition.field }, `${f.field} · ${t(`kind.${f.kind}`)}`),
          ),
        ),
      ),
    );
    if (!known) select.prepend(h("option", { value: condition.field ?? "", selected: true }, t("builder.unknownField", { name: condition.field ?? "" })));
    return select;
  }

  setField(condition, name) {
    condition.field = name;
    const column = this.byField.get(name);
    if (condition.type && column && condition.type !== column.kind && !(condition.type === "date" && column.kind === "string")) {
      delete condition.type;
    }
    this.fitOperator(condition);
    this.changed(true);
  }

  /** Keep the operator if it applies to the condition's kind, else take the first that does. */
  fitOperator(condition) {
    const allowed = this.operatorsFor(this.kindOf(condition));
    if (allowed.some((o) => o.operator === condition.operator)) return;
    this.setOperatorOnly(condition, allowed[0]);
  }

  setOperatorOnly(condition, operator) {
    const before = this.byOperator.get(condition.operator);
    condition.operator = operator.operator;
    if (operator.value === "none") delete condition.value;
    else if (!before || before.value !== operator.value) condition.value = structuredClone(DEFAULTS[operator.value]);
  }

  operatorSelect(condition, id, kind) {
    const allowed = this.operatorsFor(kind);
    const select = h(
      "select",
      {
        id,
        onChange: (e) => {
          this.setOperatorOnly(condition, this.byOperator.get(e.target.value));
          this.changed(true);
        },
      },
      allowed.map((o) => h("option", { value: o.operator, selected: o.operator === condition.operator }, t(`op.${o.operator}`))),
    );
    if (!allowed.some((o) => o.operator === condition.operator)) {
      select.prepend(h("option", { value: condition.operator ?? "", selected: true }, String(condition.operator ?? "")));
    }
    return select;
  }

  asDate(condition, base) {
    const box = h("input", {
      type: "checkbox",
      id: `${base}-asdate`,
      checked: condition.type === "date",
      onChange: (e) => {
        if (e.target.checked) condition.type = "date";
        else delete condition.type;
        this.fitOperator(condition);
        this.changed(true);
      },
    });
    return h("div", { class: "field inline" }, box, h("label", { for: box.id }, t("builder.asDate")));
  }

  valueEditor(condition, base, kind, shape) {
    if (shape === "none") return null;
    const set = (value) => {
      condition.value = value;
      this.changed(false);
    };
    if (shape === "scalar") return this.input(`${base}-value`, t("builder.value"), kind, condition.value, set);
    if (shape === "days") return this.input(`${base}-value`, t("builder.days"), "days", condition.value, set);
    if (shape === "list") return this.listInput(`${base}-value`, kind, condition.value, set);
    const pair = Array.isArray(condition.value) ? [...condition.value] : [null, null];
    const inputKind = shape === "day_range" ? "days" : kind;
    const labels = shape === "day_range" ? ["builder.daysFrom", "builder.daysTo"] : ["builder.from", "builder.to"];
    return h(
      "div",
      { class: "pair" },
      [0, 1].map((i) =>
        this.input(`${base}-value-${i}`, t(labels[i]), inputKind, pair[i], (v) => {
          pair[i] = v;
          set([...pair]);
        }),
      ),
    );
  }

  input(id, label, kind, value, set) {
    let control;
    if (kind === "boolean") {
      control = h(
        "select",
        { id, onChange: (e) => set(e.target.value === "" ? null : e.target.value === "true") },
        h("option", { value: "", selected: value === null || value === undefined }, "—"),
        h("option", { value: "true", selected: value === true }, t("common.true")),
        h("option", { value: "false", selected: value === false }, t("common.false")),
      );
    } else {
      const type = kind === "number" || kind === "days" ? "number" : kind === "date" ? "date" : "text";
      control = h("input", {
        id,
        type,
        step: kind === "days" ? "1" : kind === "number" ? "any" : null,
        min: kind === "days" ? "0" : null,
        value: value === null || value === undefined ? "" : String(value),
        lang: language(),
        onInput: (e) => set(parseValue(e.target.value, kind)),
      });
    }
    return h("div", { class: "field" }, h("label", { for: id }, label), control);
  }

  listInput(id, kind, value, set) {
    const hintId = newId("hint");
    const control = h("input", {
      id,
      type: "text",
      value: Array.isArray(value) ? value.join(", ") : value === null || value === undefined ? "" : String(value),
      "aria-describedby": hintId,
      onInput: (e) =>
        set(
          e.target.value
            .split(",")
            .map((part) => part.trim())
            .filter((part) => part !== "")
            .map((part) => parseValue(part, kind)),
        ),
    });
    return h(
      "div",
      { class: "field wide" },
      h("label", { for: id }, t("builder.values")),
      control,
      h("span", { class: "hint", id: hintId }, t("builder.listHint")),
    );
  }

  // --- problems and counts, placed at the node they belong to -------------------------
  setProblems(problems) {
    this.problems = problems;
    this.applyProblems();
  }

  /** Problems no node of the builder holds (e.g. at `rules`): shown by the page. */
  unplaced() {
    return this.problems.filter((p) => !this.nodeFor(p.location));
  }

  nodeFor(location) {
    let where = location;
    while (where) {
      if (this.nodes.has(where)) return { location: where, ...this.nodes.get(where) };
      where = parentLocation(where);
    }
    return null;
  }

  applyProblems() {
    for (const { el, control } of this.nodes.values()) {
      el.classList.remove("invalid", "warned");
      clear(el.querySelector(":scope > .problems"));
      if (control) control.removeAttribute("aria-invalid");
    }
    for (const problem of this.problems) {
      const node = this.nodeFor(problem.location);
      if (!node) continue;
      const error = problem.severity !== "warning";
      node.el.classList.add(error ? "invalid" : "warned");
      if (error && node.control) node.control.setAttribute("aria-invalid", "true");
      const list = node.el.querySelector(":scope > .problems");
      add(list, h("li", { class: error ? "error" : "warning" }, `${labelOf(problem.location, node.location)}${problem.problem}`));
      if (node.control && !node.control.getAttribute("aria-describedby")?.includes(list.id)) {
        const before = node.control.getAttribute("aria-describedby");
        node.control.setAttribute("aria-describedby", before ? `${before} ${list.id}` : list.id);
      }
    }
  }

  /** counts: Map location -> users matched by that node alone (from a preview). */
  setCounts(counts) {
    this.counts = counts;
    this.applyCounts();
  }

  clearCounts() {
    for (const { el } of this.nodes.values()) {
      const slot = el.querySelector(".count");
      if (slot) slot.textContent = "";
    }
  }

  applyCounts() {
    this.clearCounts();
    for (const [location, count] of this.counts) {
      const node = this.nodes.get(location);
      const slot = node && node.el.querySelector(".count");
      if (slot) slot.textContent = t("builder.alone", { n: new Intl.NumberFormat().format(count) });
    }
  }

  focusLocation(location) {
    const node = this.nodeFor(location);
    if (node && node.control) node.control.focus();
  }
}

function labelOf(location, nodeLocation) {
  const rest = location.slice(nodeLocation.length).replace(/^\./, "");
  return rest ? `${rest}: ` : "";
}

/** Text from an input as the rule's value for a column kind (left as text if it is not one). */
export function parseValue(text, kind) {
  if (text === "") return null;
  if (kind === "number" || kind === "days") {
    const number = Number(text);
    if (!Number.isFinite(number)) return text;
    return kind === "days" ? Math.trunc(number) : number;
  }
  if (kind === "boolean") {
    if (text === "true") return true;
    if (text === "false") return false;
  }
  return text;
}
