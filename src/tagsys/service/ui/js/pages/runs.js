// Runs: start one (mode, tags, users, as_of, dry run), follow a job live (phase, Spark
// progress, cancel), the run history with filters, and a run's page (per-tag summary,
// rollback).

import { get, post, query } from "../api.js";
import { add, announce, clear, field, fill, formatNumber, formatTime, h, seconds, shortId } from "../dom.js";
import { language, t } from "../i18n.js";
import { loadTags } from "../tagstore.js";

const MODES = ["task-all", "task-tags", "task-users", "incremental"];
const HISTORY_MODES = [...MODES, "rollback"];
const RUN_STATUSES = ["running", "completed", "failed", "cancelled"];
const FINAL = new Set(["completed", "failed", "cancelled"]);
const PHASES = ["plan", "compute", "write"];
const POLL_MS = 1000;
const NUMERIC = new Set(["runs.rows", "runs.seconds", "runs.matched", "runs.added", "runs.removed", "runs.version"]);

function headRow(cols) {
  return h("thead", null, h("tr", null, cols.map((k) => h("th", { scope: "col", class: NUMERIC.has(k) ? "num" : null }, t(k)))));
}

export function render(main, { page, params }) {
  if (page === "jobs" && params[0]) return jobPage(main, params[0]);
  if (params[0] && params[0] !== "new") return runPage(main, params[0]);
  listPage(main, params[0] === "new" ? Number(params[1]) || null : null);
  return null;
}

/** setInterval that stops when the page is left (the returned cleanup) or `stop()` is called. */
function poller(fn) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    const again = await fn();
    if (!stopped && again !== false) timer = setTimeout(tick, POLL_MS);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

// --- the list page: trigger form and history ----------------------------------------------
function listPage(main, tagId) {
  add(main, h("h1", null, t("runs.title")));
  const trigger = h("section", { class: "card", "aria-labelledby": "trigger-title" }, h("h2", { id: "trigger-title" }, t("runs.start")));
  const history = h("section", { class: "card", "aria-labelledby": "history-title" }, h("h2", { id: "history-title" }, t("runs.history")));
  add(main, trigger, history);
  loadTags()
    .then((tags) => add(trigger, triggerForm(tags, tagId)))
    .catch((exc) => add(trigger, h("p", { class: "error" }, exc.message)));
  historyList(history);
}

function triggerForm(tags, tagId) {
  const mode = h("select", { id: "run-mode" }, MODES.map((m) => h("option", { value: m, selected: m === (tagId ? "task-tags" : "task-all") }, t(`mode.${m}`))));
  const tagBoxes = tags.map((tag) =>
    h("input", { type: "checkbox", id: `run-tag-${tag.tag_id}`, value: tag.tag_id, checked: tag.tag_id === tagId }),
  );
  const tagSet = h(
    "fieldset",
    { class: "choices" },
    h("legend", null, t("runs.tags")),
    tags.map((tag, i) => h("div", { class: "field inline" }, tagBoxes[i], h("label", { for: tagBoxes[i].id }, `${tag.name} (#${tag.tag_id})`))),
  );
  const users = h("textarea", { id: "run-users", rows: 3 });
  const days = h("input", { type: "number", id: "run-days", min: 0, step: 1, value: 1 });
  const asOf = h("input", { type: "date", id: "run-as-of" });
  const dryRun = h("input", { type: "checkbox", id: "run-dry" });
  const error = h("p", { class: "error", role: "alert" });
  const usersField = field(t("runs.users"), users, t("runs.usersHint"));
  const daysField = field(t("runs.days"), days);
  const sync = () => {
    tagSet.hidden = mode.value === "task-all";
    usersField.hidden = mode.value !== "task-users";
    daysField.hidden = mode.value !== "incremental";
  };
  mode.addEventListener("change", sync);
  sync();
  const submit = async (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = { mode: mode.value, dry_run: dryRun.checked };
    const chosen = tagBoxes.filter((b) => b.checked).map((b) => Number(b.value));
    if (mode.value !== "task-all" && chosen.length) body.tag_ids = chosen;
    if (mode.value === "task-users") body.user_ids = users.value.split(/[\s,]+/).filter(Boolean);
    if (mode.value === "incremental") body.days = Number(days.value);
    if (asOf.value) body.as_of = asOf.value;
    try {
      const started = await post("/api/v1/tags/trigger", body);
      location.hash = `#/jobs/${started.task_id}`;
    } catch (exc) {
      error.textContent = exc.message;
    }
  };
  return h(
    "form",
    { id: "trigger-form", onSubmit: submit },
    h("div", { class: "row" }, field(t("runs.mode"), mode, t("runs.modeHint")), field(t("runs.asOf"), asOf, t("runs.asOfHint")), daysField),
    tagSet,
    usersField,
    h("div", { class: "field inline" }, dryRun, h("label", { for: dryRun.id }, t("runs.dryRun"))),
    error,
    h("button", { type: "submit", class: "primary" }, t("runs.submit")),
  );
}

function historyList(section) {
  const status = h("select", { id: "history-status" }, h("option", { value: "" }, t("common.any")), RUN_STATUSES.map((s) => h("option", { value: s }, t(`status.${s}`))));
  const mode = h("select", { id: "history-mode" }, h("option", { value: "" }, t("common.any")), HISTORY_MODES.map((m) => h("option", { value: m }, t(`mode.${m}`))));
  const body = h("tbody");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, t("common.more"));
  const state = { cursor: null };
  const load = async (append) => {
    if (!append) clear(body);
    const params = { status: status.value, mode: mode.value, limit: 20, cursor: append ? state.cursor : null };
    try {
      const page = await get(`/api/v1/runs${query(params)}`);
      add(body, ...page.runs.map(runRow));
      if (!append && !page.runs.length) add(body, h("tr", null, h("td", { colspan: 7, class: "muted" }, t("runs.none"))));
      state.cursor = page.next_cursor;
      more.hidden = !page.next_cursor;
    } catch (exc) {
      add(body, h("tr", null, h("td", { colspan: 7, class: "error" }, exc.message)));
    }
  };
  status.addEventListener("change", () => load(false));
  mode.addEventListener("change", () => load(false));
  more.addEventListener("click", () => load(true));
  const cols = ["runs.started", "runs.run", "runs.mode", "runs.status", "runs.asOf", "runs.rows", "runs.seconds"];
  add(section, 
    h("div", { class: "filters" }, field(t("runs.status"), status), field(t("runs.mode"), mode)),
    h("table", { class: "data", id: "run-history" }, headRow(cols), body),
    more,
  );
  load(false);
}

function runRow(run) {
  const lang = language();
  const took = seconds(run.started_at, run.finished_at);
  return h(
    "tr",
    { dataset: { run: run.run_id } },
    h("td", null, formatTime(run.started_at, lang)),
    h("td", null, h("a", { href: `#/runs/${run.run_id}` }, shortId(run.run_id))),
    h("td", null, t(`mode.${run.mode}`)),
    h("td", null, statusBadge(run.status)),
    h("td", null, run.as_of),
    h("td", { class: "num" }, formatNumber(run.rows_written, lang)),
    h("td", { class: "num" }, took === null ? "—" : took.toFixed(1)),
  );
}

function statusBadge(status) {
  const kind = { completed: "ok", failed: "failed", cancelled: "inactive", abandoned: "failed" }[status] || "running";
  return h("span", { class: `badge ${kind}` }, t(`status.${status}`));
}

// --- a job, live ----------------------------------------------------------------------------
function jobPage(main, taskId) {
  const head = h("div", { class: "page-head" }, h("h1", null, t("runs.job", { id: shortId(taskId) })));
  const live = h("section", { class: "card", id: "live", "aria-labelledby": "live-title" }, h("h2", { id: "live-title" }, t("runs.progress")));
  const statusLine = h("p", { id: "job-status", role: "status" });
  const phases = h("ol", { class: "phases", "aria-label": t("runs.phases") });
  const bar = progressBar();
  const cancel = h("button", { type: "button", class: "danger", id: "cancel-job" }, t("runs.cancel"));
  const outcome = h("div", { id: "job-outcome" });
  add(live, statusLine, phases, bar.el, h("div", { class: "actions" }, cancel));
  add(main, head, live, outcome);
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      const answer = await post(`/api/v1/tasks/${taskId}/cancel`);
      announce(answer.message);
    } catch (exc) {
      statusLine.textContent = exc.message;
    }
  });
  return poller(async () => {
    let job;
    try {
      job = (await get(`/api/v1/tasks/${taskId}/status`)).status;
    } catch (exc) {
      statusLine.textContent = exc.message;
      return false;
    }
    let progress = null;
    if (job.run_id && !FINAL.has(job.status)) {
      progress = await get(`/api/v1/runs/${job.run_id}/progress`).catch(() => null);
    }
    showJob(job, progress, { statusLine, phases, bar, cancel });
    if (!FINAL.has(job.status)) return true;
    finished(job, outcome);
    return false;
  });
}

function showJob(job, progress, view) {
  const phase = progress ? progress.phase : null;
  view.statusLine.textContent = t("runs.jobStatus", { status: t(`status.${job.status}`), mode: t(`mode.${job.mode}`) });
  view.statusLine.dataset.status = job.status;
  fill(view.phases, 
    PHASES.map((name) => {
      const index = PHASES.indexOf(name);
      const at = PHASES.indexOf(phase);
      const done = FINAL.has(job.status) ? job.status === "completed" : at > index;
      const now = !FINAL.has(job.status) && at === index;
      return h("li", { class: done ? "done" : now ? "now" : "", "aria-current": now ? "step" : null }, t(`phase.${name}`));
    }),
  );
  const spark = progress && progress.spark;
  view.bar.set(spark ? spark.percent : FINAL.has(job.status) ? 100 : null, spark);
  view.cancel.hidden = FINAL.has(job.status);
}

function progressBar() {
  const bar = h("progress", { id: "spark-progress", max: 100 });
  const text = h("p", { class: "muted", id: "spark-progress-text" });
  return {
    el: h("div", { class: "field" }, h("label", { for: bar.id }, t("runs.sparkProgress")), bar, text),
    set(percent, spark) {
      if (percent === null || percent === undefined) {
        bar.removeAttribute("value");
        text.textContent = t("runs.noSpark");
        return;
      }
      bar.value = percent;
      text.textContent = spark
        ? t("runs.sparkTasks", { done: spark.tasks_done, total: spark.tasks, jobs: spark.jobs_running, percent: Math.round(percent) })
        : "";
    },
  };
}

async function finished(job, outcome) {
  announce(t("runs.jobDone", { status: t(`status.${job.status}`) }));
  if (job.error) add(outcome, h("p", { class: "error" }, job.error));
  if (!job.run_id) return;
  add(outcome, h("p", null, h("a", { href: `#/runs/${job.run_id}` }, t("runs.openRun"))));
  try {
    const run = (await get(`/api/v1/runs/${job.run_id}`)).run;
    add(outcome, summary(run));
  } catch (exc) {
    add(outcome, h("p", { class: "error" }, exc.message));
  }
}

// --- a run's page ---------------------------------------------------------------------------
function runPage(main, runId) {
  add(main, h("div", { class: "page-head" }, h("h1", null, t("runs.runTitle", { id: shortId(runId) }))));
  const body = h("div");
  add(main, body);
  return poller(async () => {
    let run;
    try {
      run = (await get(`/api/v1/runs/${runId}`)).run;
    } catch (exc) {
      fill(body, h("p", { class: "error" }, exc.message));
      return false;
    }
    fill(body, facts(run), summary(run));
    if (run.status === "running") return true;
    add(body, rollbackPanel(run));
    return false;
  });
}

function facts(run) {
  const lang = language();
  const took = seconds(run.started_at, run.finished_at);
  const items = [
    [t("runs.run"), run.run_id],
    [t("runs.mode"), t(`mode.${run.mode}`)],
    [t("runs.status"), statusBadge(run.status)],
    [t("runs.asOf"), run.as_of],
    [t("runs.started"), formatTime(run.started_at, lang)],
    [t("runs.finished"), formatTime(run.finished_at, lang)],
    [t("runs.seconds"), took === null ? "—" : took.toFixed(1)],
    [t("runs.phase"), run.phase ? t(`phase.${run.phase}`) : "—"],
    [t("runs.rows"), formatNumber(run.rows_written, lang)],
  ];
  return h(
    "section",
    { class: "card", "aria-label": t("runs.facts") },
    h("dl", { class: "facts", id: "run-facts" }, items.map(([k, v]) => [h("dt", null, k), h("dd", null, v)])),
    run.error ? h("p", { class: "error" }, run.error) : null,
  );
}

function summary(run) {
  const lang = language();
  const s = run.summary;
  if (!s) return h("p", { class: "muted" }, t("runs.noSummary"));
  const tagRows = (s.tags || []).map((tag) =>
    h(
      "tr",
      { dataset: { tag: tag.tag_id } },
      h("td", null, h("a", { href: `#/rules/${tag.tag_id}` }, tag.tag_name || `#${tag.tag_id}`)),
      h("td", null, statusBadge(tag.status === "ok" ? "completed" : tag.status === "failed" ? "failed" : "cancelled")),
      h("td", { class: "num" }, formatNumber(tag.matched, lang)),
      h("td", { class: "num" }, formatNumber(tag.added, lang)),
      h("td", { class: "num" }, formatNumber(tag.removed, lang)),
      h("td", { class: "num" }, tag.version ?? "—"),
      h("td", null, tag.message ?? ""),
    ),
  );
  const cols = ["runs.tag", "runs.status", "runs.matched", "runs.added", "runs.removed", "runs.version", "runs.message"];
  const totals = [
    [t("runs.evaluated"), s.users_evaluated],
    [t("runs.inserted"), s.rows_inserted],
    [t("runs.updated"), s.rows_updated],
    [t("runs.unchanged"), s.rows_unchanged],
  ];
  const phases = Object.entries(s.phases || {}).map(([name, secs]) => `${t(`phase.${name}`)} ${secs.toFixed(1)} s`);
  return h(
    "section",
    { class: "card", "aria-labelledby": "summary-title" },
    h("h2", { id: "summary-title" }, s.dry_run ? t("runs.summaryDry") : t("runs.summary")),
    h("dl", { class: "facts" }, totals.map(([k, v]) => [h("dt", null, k), h("dd", null, formatNumber(v, lang))])),
    h("table", { class: "data", id: "run-tags" }, headRow(cols), h("tbody", null, tagRows)),
    phases.length ? h("p", { class: "muted" }, `${t("runs.phases")}: ${phases.join(" · ")}`) : null,
    (s.notes || []).map((note) => h("p", { class: "warning" }, note)),
  );
}

function rollbackPanel(run) {
  const section = h("section", { class: "card", "aria-labelledby": "rollback-title" }, h("h2", { id: "rollback-title" }, t("runs.rollback")));
  if (run.summary && run.summary.dry_run) {
    add(section, h("p", { class: "muted" }, t("runs.rollbackDry")));
    return section;
  }
  const result = h("div", { id: "rollback-result", "aria-live": "polite" });
  const go = (dryRun) => async () => {
    fill(result, h("p", { class: "muted" }, t("common.working")));
    try {
      const answer = (await post(`/api/v1/runs/${run.run_id}/rollback`, { dry_run: dryRun })).rollback;
      fill(result, rollbackResult(answer));
    } catch (exc) {
      fill(result, h("p", { class: "error" }, exc.message));
    }
  };
  add(section, 
    h("p", null, t("runs.rollbackIntro")),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "secondary", onClick: go(true) }, t("runs.rollbackDryRun")),
      h("button", { type: "button", class: "danger", onClick: go(false) }, t("runs.rollbackNow")),
    ),
    result,
  );
  return section;
}

function rollbackResult(r) {
  const lang = language();
  const items = [
    ["runs.restored", r.restored],
    ["runs.deleted", r.deleted],
    ["runs.recreated", r.recreated],
    ["runs.already", r.already],
    ["runs.conflicts", r.conflicts],
  ];
  return h(
    "div",
    null,
    h("p", null, r.dry_run ? t("runs.rollbackWould") : t("runs.rollbackDone", { status: t(`status.${r.status}`) }), " ", h("a", { href: `#/runs/${r.run_id}` }, shortId(r.run_id))),
    h("dl", { class: "facts" }, items.map(([k, v]) => [h("dt", null, t(k)), h("dd", null, formatNumber(v, lang))])),
    r.conflict_sample.length ? h("p", { class: "muted" }, `${t("runs.conflictSample")}: ${r.conflict_sample.join(", ")}`) : null,
  );
}
