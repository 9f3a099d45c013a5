// The run view: a Retell test run's transcript as a conversation, its definition's metrics as a checklist.
// Retell documents a run's `transcript_snapshot` only by name ("ConversationFlowPlaygroundSnapshot or
// RetellLlmPlaygroundSnapshot": its get-test-run page; retell-sdk types it `object`), not its fields. So its turns
// are found by shape, not by a guessed key: the snapshot itself, or its first value, that is a list of messages
// with a `role` (the message shape of retell-sdk's PlaygroundCompletionResponse); an empty list is no turns.
function isTurns(value) {
  return Array.isArray(value) && value.every((message) => isObject(message) && typeof message.role === "string");
}

function turnsOf(snapshot) {
  if (isTurns(snapshot)) return snapshot;
  if (!isObject(snapshot)) return null;
  const lists = Object.values(snapshot).filter(isTurns);
  return lists.find((list) => list.length > 0) || lists[0] || null;
}

// Tool arguments arrive as a JSON string: indented when they parse, as sent when not.
function pretty(value) {
  if (typeof value !== "string") return text(value);
  try {
    return JSON.stringify(JSON.parse(value), null, 2);
  } catch (_) {
    return value;
  }
}

const SHORT_ARGUMENTS = 160; // characters of tool arguments shown open; longer ones fold away

// A turn's label; a tool's name is kept as the vendor spells it (the label itself is set in capitals).
function who(label, name) {
  return el("span", { class: "who" }, label, name ? [" ", el("code", {}, name)] : null);
}

function turn(message, toolNames) {
  if (!isObject(message)) return el("li", { class: "turn other" }, text(message));
  const role = text(message.role);
  if (role === "agent" || role === "user") {
    return el("li", { class: "turn " + role }, who(role === "agent" ? "Agent" : "User"), text(message.content));
  }
  if (role === "tool_call_invocation") {
    toolNames.set(text(message.tool_call_id), text(message.name));
    const args = pretty(message.arguments);
    return el(
      "li",
      { class: "turn tool" },
      who("Tool call", text(message.name)),
      args.length <= SHORT_ARGUMENTS ? el("pre", {}, args) : el("details", {}, el("summary", {}, "arguments"), el("pre", {}, args)),
    );
  }
  if (role === "tool_call_result") {
    const failed = message.successful === false;
    const name = toolNames.get(text(message.tool_call_id));
    return el(
      "li",
      { class: "turn tool-result" + (failed ? " failed" : "") },
      who(failed ? "Tool result · failed" : "Tool result", name),
      el("pre", {}, pretty(message.content)),
    );
  }
  if (role === "node_transition" || role === "state_transition") {
    const to = role === "node_transition" ? message.new_node_name : message.new_state_name;
    return el("li", { class: "turn event" }, "→ " + (role === "node_transition" ? "node " : "state ") + text(to));
  }
  const { role: _, content, ...rest } = message;
  return el(
    "li",
    { class: "turn other" },
    who(role || "message"),
    content !== undefined ? text(content) : JSON.stringify(rest),
  );
}

function transcriptSection(run) {
  const heading = el("h3", {}, "Transcript");
  if (!("transcript_snapshot" in run)) return el("section", { class: "box" }, heading, el("p", { class: "muted" }, "Left out of this result (include_transcript was false)."));
  const turns = turnsOf(run.transcript_snapshot);
  if (turns === null) {
    const empty = run.transcript_snapshot === null || run.transcript_snapshot === undefined;
    return el("section", { class: "box" }, heading, empty ? el("p", { class: "muted" }, "No transcript yet.") : el("pre", {}, JSON.stringify(run.transcript_snapshot, null, 2)));
  }
  heading.textContent = "Transcript · " + turns.length + (turns.length === 1 ? " turn" : " turns");
  const toolNames = new Map();
  return el("section", { class: "box", "aria-label": "Transcript" }, heading, el("ol", { class: "transcript", tabindex: 0 }, turns.map((message) => turn(message, toolNames))));
}

// Retell reports one outcome per run, not per metric: a passed run met them all; a failed run missed the ones its
// explanation names; anything else is shown as not reported.
function metricsSection(run, definition) {
  const metrics = Array.isArray(definition.metrics) ? definition.metrics : [];
  const explanation = text(run.result_explanation).toLowerCase();
  const items = metrics.map((metric) => {
    const name = text(metric);
    let state = "unknown";
    if (run.status === "pass") state = "met";
    else if ((run.status === "fail" || run.status === "error") && name && explanation.includes(name.toLowerCase())) state = "missed";
    const mark = { met: "✓", missed: "✗", unknown: "○" }[state];
    const words = { met: "met", missed: "not met", unknown: "not reported" }[state];
    return el("li", { class: state }, el("span", { class: "mark", "aria-hidden": "true" }, mark), el("span", {}, name, el("span", { class: "sr" }, " (" + words + ")")));
  });
  return el(
    "aside",
    { class: "box", "aria-label": "Metrics" },
    el("h3", {}, "Metrics"),
    items.length ? el("ul", { class: "checklist" }, items) : el("p", { class: "muted" }, "The definition lists no metrics."),
  );
}

function runView(run, back) {
  const definition = isObject(run.test_case_definition_snapshot) ? run.test_case_definition_snapshot : {};
  const title = el("h2", { tabindex: -1 }, text(definition.name) || "Retell test run");
  const explanation = text(run.result_explanation);
  const view = el(
    "article",
    { class: "run-view" },
    back || null,
    title,
    el("div", { class: "meta" }, badge(run.status), el("code", {}, text(run.test_case_job_id)), definition.test_case_definition_id || run.test_case_definition_id ? el("span", {}, "definition ", el("code", {}, text(run.test_case_definition_id || definition.test_case_definition_id))) : null),
    explanation ? el("div", { class: "box explanation", role: "note" }, el("strong", {}, "Result: "), explanation) : null,
    el("div", { class: "run-grid" }, transcriptSection(run), metricsSection(run, definition)),
  );
  view.focusTarget = title;
  return view;
}

// Show a run in place of the page that lists it (the batch or the comparison), with a button back to that page.
async function openRun(id, trigger, backLabel) {
  const listing = app.firstElementChild; // kept while the run is shown, so its filter and sort survive the way back
  const back = el("button", { type: "button", class: "back" }, backLabel);
  back.addEventListener("click", () => {
    show(listing);
    trigger.focus();
  });
  show(el("div", {}, back, el("p", { class: "muted" }, "Loading run " + id + "…")));
  let view;
  try {
    view = render(await host.request("tools/call", { name: "get_test_run", arguments: { test_case_job_id: id } }), back);
  } catch (error) {
    view = notice("The host could not call get_test_run", error.message, back);
  }
  show(view);
  (view.focusTarget || back).focus();
}

views.push({ matches: (data) => "test_case_job_id" in data && !("failed" in data), render: runView });

// The call view (get_call): a production call's turns as a conversation, in the run view's shapes (Retell's
// transcript entries), with its analysis and details beside them. The server never sends a link or a full number.
function callOutcome(successful) {
  if (successful === true) return el("span", { class: "badge s-pass" }, "successful");
  if (successful === false) return el("span", { class: "badge s-fail" }, "unsuccessful");
  return el("span", { class: "badge s-other" }, "not analysed");
}

function callTurns(call) {
  const turns = Array.isArray(call.turns) ? call.turns : [];
  const heading = el("h3", {}, "Transcript · " + count(call.turns_total, turns.length) + " turns" + (call.transcript ? " (" + text(call.transcript) + ")" : ""));
  if (!turns.length) return el("section", { class: "box" }, heading, el("p", { class: "muted" }, text(call.transcript_note) || "No transcript."));
  const toolNames = new Map();
  const items = turns.map((message) => turn(message, toolNames));
  const omitted = isObject(call.omitted_turns) ? call.omitted_turns : null;
  if (omitted && Number.isInteger(omitted.after) && omitted.after >= 0 && omitted.after <= items.length) {
    items.splice(omitted.after, 0, el("li", { class: "turn event omitted" }, "… " + count(omitted.count) + " turns left out …"));
  }
  return el("section", { class: "box", "aria-label": "Transcript" }, heading, el("ol", { class: "transcript", tabindex: 0 }, items));
}

function facts(pairs) {
  const shown = pairs.filter(([, value]) => value !== null && value !== undefined && value !== "");
  return el("dl", { class: "facts" }, shown.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, text(value))]));
}

function callDetails(call) {
  const analysis = isObject(call.analysis) ? call.analysis : {};
  const latency = isObject(call.latency_ms) ? call.latency_ms : {};
  const seconds = Number.isFinite(call.duration_ms) ? Math.round(call.duration_ms / 1000) + " s" : null;
  const e2e = [latency.e2e_p50, latency.e2e_p90].every(Number.isFinite) ? Math.round(latency.e2e_p50) + " / " + Math.round(latency.e2e_p90) + " ms" : null;
  const variables = isObject(call.dynamic_variables) ? Object.entries(call.dynamic_variables) : [];
  return el(
    "aside",
    { class: "box", "aria-label": "Call details" },
    el("h3", {}, "Call"),
    facts([
      ["Sentiment", analysis.user_sentiment],
      ["Ended by", call.disconnection_reason],
      ["Started", typeof call.start === "string" ? call.start.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC") : null],
      ["Duration", seconds],
      ["From", call.from],
      ["To", call.to],
      ["Transferred to", call.transfer_destination],
      ["Latency p50 / p90", e2e],
    ]),
    variables.length ? [el("h3", {}, "Dynamic variables"), facts(variables)] : null,
    isObject(analysis.custom_analysis_data) && Object.keys(analysis.custom_analysis_data).length ? [el("h3", {}, "Custom analysis"), facts(Object.entries(analysis.custom_analysis_data))] : null,
    el("p", { class: "muted" }, text(call.transcript_note)),
    el("p", { class: "muted recording" }, text(call.recording)),
  );
}

function callView(call, back) {
  const analysis = isObject(call.analysis) ? call.analysis : {};
  const title = el("h2", { tabindex: -1 }, (text(call.agent_name) || text(call.agent_id) || "Retell") + " call");
  const version = Number.isInteger(call.agent_version) ? "version " + call.agent_version : null;
  const view = el(
    "article",
    { class: "run-view call-view" },
    back || null,
    title,
    el("div", { class: "meta" }, callOutcome(analysis.call_successful), el("code", {}, text(call.call_id)), version ? el("span", {}, version) : null, el("span", {}, text(call.call_type))),
    analysis.call_summary ? el("div", { class: "box summary", role: "note" }, el("strong", {}, "Summary: "), text(analysis.call_summary)) : null,
    call.clipped ? notice("Part of this call is not shown", text(call.clipped)) : null,
    el("div", { class: "run-grid" }, callTurns(call), callDetails(call)),
  );
  view.focusTarget = title;
  return view;
}

views.push({ matches: (data) => "call_id" in data && Array.isArray(data.turns), render: callView });
