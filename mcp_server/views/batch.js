// The batch view: counts as a bar, the failed and errored runs as a table; choosing one shows its run in place.
const COLUMNS = [
  { key: "name", label: "Test" },
  { key: "status", label: "Status" },
  { key: "result_explanation", label: "Explanation" },
];

function batchCounts(summary) {
  const recount = isObject(summary.counts) ? summary.counts : {};
  const parts = {
    pass: count(summary.pass_count, recount.pass),
    fail: count(summary.fail_count, recount.fail),
    error: count(summary.error_count, recount.error),
  };
  return countsBar(parts, count(summary.total_count, summary.total_runs));
}

function failedTable(summary) {
  const runs = (Array.isArray(summary.failed) ? summary.failed : []).filter(isObject);
  const more = count(summary.failed_not_shown);
  if (!runs.length) return el("p", { class: "muted" }, more ? more + " failed runs, none listed." : "No failed or errored runs.");
  const state = { key: null, direction: 1, query: "", status: "" };
  const filter = el("input", { type: "search", placeholder: "Filter by test or explanation", "aria-label": "Filter failed runs" });
  const statuses = [...new Set(runs.map((run) => text(run.status)))].sort();
  const select = el("select", { "aria-label": "Status" }, el("option", { value: "" }, "All statuses"), statuses.map((status) => el("option", { value: status }, status)));
  const tbody = el("tbody");
  const shown = el("p", { class: "muted", "aria-live": "polite" });
  const headers = COLUMNS.map((column) => {
    const button = el("button", { type: "button" }, column.label);
    const th = el("th", { scope: "col", "aria-sort": "none" }, button);
    button.addEventListener("click", () => {
      state.direction = state.key === column.key ? -state.direction : 1;
      state.key = column.key;
      for (const other of headers) other.setAttribute("aria-sort", "none");
      th.setAttribute("aria-sort", state.direction > 0 ? "ascending" : "descending");
      fill();
    });
    return th;
  });
  function fill() {
    const query = state.query.toLowerCase();
    let rows = runs.filter((run) => (!state.status || text(run.status) === state.status) && (!query || (text(run.name) + " " + text(run.result_explanation) + " " + text(run.test_case_job_id)).toLowerCase().includes(query)));
    if (state.key) rows = rows.slice().sort((a, b) => state.direction * text(a[state.key]).localeCompare(text(b[state.key])));
    tbody.replaceChildren(...rows.map(row));
    shown.textContent = "Showing " + rows.length + " of " + runs.length + " listed" + (more ? "; " + more + " more failed runs are not listed (get them with list_test_runs)." : ".");
  }
  function row(run) {
    const id = text(run.test_case_job_id);
    const open = el("button", { type: "button", class: "open", title: "Show run " + id }, text(run.name) || id);
    open.addEventListener("click", () => openRun(id, open, "← Back to the batch"));
    return el("tr", { "data-job": id }, el("td", {}, open), el("td", {}, badge(run.status)), el("td", { class: "explain" }, text(run.result_explanation)));
  }
  filter.addEventListener("input", () => { state.query = filter.value; fill(); });
  select.addEventListener("change", () => { state.status = select.value; fill(); });
  fill();
  return el(
    "section",
    { class: "failed", "aria-label": "Failed and errored runs" },
    el("h3", {}, "Failed and errored runs"),
    el("div", { class: "controls" }, filter, select),
    el("div", { class: "table-wrap" }, el("table", {}, el("thead", {}, el("tr", {}, headers)), tbody)),
    shown,
  );
}

function batchView(summary) {
  const complete = summary.complete === true;
  return el(
    "article",
    { class: "batch-view" },
    el("h2", {}, "Batch ", el("code", {}, text(summary.test_case_batch_job_id))),
    el("div", { class: "meta" }, badge(summary.status), el("span", { class: "completeness" }, complete ? "Summary complete" : "Summary incomplete: " + (text(summary.incomplete_reason) || "no reason given"))),
    batchCounts(summary),
    failedTable(summary),
  );
}

views.push({ matches: (data) => Array.isArray(data.failed) && "test_case_batch_job_id" in data, render: batchView });
