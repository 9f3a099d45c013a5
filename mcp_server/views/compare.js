// The compare view: two batches' counts side by side, then what the change fixed, what it broke and what still
// fails, one row per test definition; a row with a run in the after batch opens that run in place.
const CHANGE_LISTS = [
  { key: "fixed", title: "Fixed", always: true },
  { key: "regressed", title: "Regressed", always: true, explained: true },
  { key: "still_failing", title: "Still failing", always: true, explained: true },
  { key: "only_before", title: "Only in the before batch" },
  { key: "only_after", title: "Only in the after batch" },
];

function batchSide(label, side) {
  side = isObject(side) ? side : {};
  const engine = isObject(side.response_engine) ? side.response_engine : null;
  // Without Retell's counts the recount gives the total only: the runs are then not split by status.
  const counted = [side.pass_count, side.fail_count, side.error_count].some((value) => Number.isInteger(value));
  const parts = counted ? { pass: count(side.pass_count), fail: count(side.fail_count), error: count(side.error_count) } : {};
  const total = count(side.total_count, side.runs);
  const duplicates = count(side.duplicates);
  return el(
    "section",
    { class: "box side", "aria-label": label + " batch", "data-side": label.toLowerCase() },
    el("h3", {}, label, " ", el("code", {}, text(side.test_case_batch_job_id))),
    el(
      "div",
      { class: "meta" },
      badge(side.status),
      el("span", { class: "engine" }, engine && engine.version !== undefined && engine.version !== null ? ["engine version ", el("b", {}, text(engine.version))] : "engine version not reported"),
    ),
    countsBar(parts, total, counted ? "not finished" : "not counted by status"),
    duplicates ? el("p", { class: "muted" }, duplicates + (duplicates === 1 ? " older run of a rerun test" : " older runs of rerun tests") + " not compared") : null,
  );
}

// A status with its side said to screen readers (the arrow between the two is hidden from them).
function statusOf(status, when) {
  const said = el("span", { class: "sr" }, when === "after" ? " after: " : "before: ");
  if (status === undefined || status === null) return el("span", { class: "absent" }, said, "not run");
  return el("span", {}, said, badge(status));
}

function changeRow(change, explained) {
  const id = text(change.test_case_job_id);
  const name = text(change.name) || text(change.test_case_definition_id) || "unnamed test";
  let label = el("span", { class: "name" }, name);
  if (id) {
    const open = el("button", { type: "button", class: "open", title: "Show run " + id }, name);
    open.addEventListener("click", () => openRun(id, open, "← Back to the comparison"));
    label = el("span", { class: "name" }, open);
  }
  const explanation = explained ? text(change.result_explanation) : "";
  return el(
    "li",
    { "data-definition": text(change.test_case_definition_id), "data-job": id || null },
    label,
    el("span", { class: "statuses" }, statusOf(change.before_status, "before"), el("span", { class: "arrow", "aria-hidden": "true" }, "→"), statusOf(change.after_status, "after")),
    explanation ? el("span", { class: "explain" }, explanation) : null,
  );
}

function changeList(list, comparison) {
  const changes = (Array.isArray(comparison[list.key]) ? comparison[list.key] : []).filter(isObject);
  const notShown = isObject(comparison.not_shown) ? count(comparison.not_shown[list.key]) : 0;
  if (!changes.length && !notShown && !list.always) return null;
  return el(
    "section",
    { class: "changes", "data-list": list.key, "aria-label": list.title },
    el("h3", {}, list.title, " ", el("span", { class: "n" }, String(changes.length + notShown))),
    changes.length ? el("ul", {}, changes.map((change) => changeRow(change, list.explained))) : null,
    notShown ? el("p", { class: "more muted" }, changes.length ? "and " + notShown + " more" : notShown + " not listed") : null,
    changes.length || notShown ? null : el("p", { class: "muted none" }, "None."),
  );
}

function compareView(comparison) {
  const complete = comparison.complete === true;
  const unchanged = count(comparison.unchanged_passing);
  const unclassified = count(comparison.unclassified);
  return el(
    "article",
    { class: "compare-view" },
    el("h2", {}, "Before and after"),
    el("div", { class: "sides" }, batchSide("Before", comparison.before), batchSide("After", comparison.after)),
    el("p", { class: "completeness" + (complete ? "" : " incomplete"), role: complete ? null : "note" }, complete ? "Comparison complete" : "Comparison incomplete: " + (text(comparison.incomplete_reason) || "no reason given")),
    CHANGE_LISTS.map((list) => changeList(list, comparison)),
    el(
      "p",
      { class: "tally muted" },
      el("span", { "data-count": "unchanged_passing" }, unchanged + (unchanged === 1 ? " test" : " tests") + " passed in both"),
      " · ",
      el("span", { "data-count": "unclassified" }, unclassified + " not compared (still running, or another status)"),
    ),
  );
}

views.push({
  matches: (data) => isObject(data.before) && isObject(data.after) && Array.isArray(data.fixed),
  render: compareView,
});
