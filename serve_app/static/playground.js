// The playground: a request form, live progress, the storyboard as scene cards on a timeline,
// scene edits and exports, recent tasks. Only the public API (api.js); no framework, no build.

import {
  ApiError,
  callJson,
  download,
  loadSchema,
  storedKey,
  storeKey,
  taskEvents,
} from "./api.js";

const MIN_CARD_PX = 230; // the shortest scene's card at least; every card is to scale
const CARD_GAP_PX = 10; // as .timeline's gap in playground.css
const EDIT_POLL_MS = 500;
const EDIT_WAIT_MS = 180_000; // an edit answered 202 (still running) is followed this long
const TASK_POLL_MS = 1000;
const STAGES = {
  queued: "Queued",
  generating: "Generating",
  parsing: "Reading the model's reply",
  repairing: "Repairing the reply",
  writing_fallback: "Writing the fallback script",
  completed: "Done",
  failed: "Failed",
};

const $ = (selector, root = document) => root.querySelector(selector);

/** An element with attributes (class, text, dataset, event handlers) and children. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "style") Object.assign(node.style, value); // CSSOM: allowed by the CSP
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return node;
}

const state = {
  schema: null,
  task: null, // the task shown
  following: null, // AbortController of the event stream being read
  busy: false,
};

// ---------------------------------------------------------------------------------------------
// Errors: the service's message and every field it names, marked on the form too.

function showError(error) {
  if (error && error.name === "AbortError") return;
  const message = error instanceof ApiError ? error.message : String(error && error.message);
  $("#error-message").textContent =
    error instanceof ApiError && error.status ? `${error.status}: ${message}` : message;
  const list = $("#error-fields");
  list.replaceChildren(
    ...(error.fields || []).map((item) =>
      el("li", {}, el("code", { text: item.field }), ` ${item.problem}`),
    ),
  );
  $("#error").hidden = false;
  markFields(error.fields || []);
  if (error instanceof ApiError && error.status === 401) {
    setKeyState("required");
    $("#api-key").focus();
  }
}

function clearError() {
  $("#error").hidden = true;
  for (const node of document.querySelectorAll(".invalid")) {
    node.classList.remove("invalid");
    node.removeAttribute("aria-invalid");
  }
}

/** body.prompt → the form's prompt; body.characters.1.name → the second character's name. */
function markFields(fields) {
  for (const { field } of fields) {
    const parts = field.split(".");
    if (parts[0] !== "body") continue;
    let node = null;
    if (parts[1] === "characters" && parts.length >= 3 && /^\d+$/.test(parts[2])) {
      const row = document.querySelectorAll("#character-rows .character-row")[Number(parts[2])];
      node = row && (parts[3] ? $(`[data-part="${parts[3]}"]`, row) : row);
    } else if (parts[1]) {
      node = document.querySelector(`.editing [name="${parts[1]}"], #request-form [name="${parts[1]}"]`);
    }
    if (node) {
      node.classList.add("invalid");
      node.setAttribute("aria-invalid", "true");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// API key and health.

function setKeyState(keyState) {
  const labels = { required: "key required", accepted: "key accepted", off: "keys off" };
  const node = $("#key-state");
  node.textContent = labels[keyState] || "";
  node.dataset.state = keyState || "";
}

async function showHealth() {
  const pill = $("#health");
  try {
    const { body } = await callJson("GET", "health");
    pill.textContent = body.llm_loaded ? `model loaded · ${body.device}` : "fallback scripts only";
    pill.dataset.state = body.status;
    pill.title = body.reason || "GET /health";
  } catch (error) {
    pill.textContent = "service unreachable";
    pill.dataset.state = "down";
    pill.title = error.message;
  }
}

// ---------------------------------------------------------------------------------------------
// The request form, built from the OpenAPI schema's vocabularies and limits.

function fillForm(schema) {
  const form = $("#request-form");
  for (const name of ["language", "aspect_ratio"]) {
    const property = schema.property("TaskCreate", name);
    form.elements[name].replaceChildren(
      ...property.enum.map((value) =>
        el("option", { value, text: value, selected: value === property.default }),
      ),
    );
  }
  for (const name of ["duration_s", "num_scenes"]) {
    const property = schema.property("TaskCreate", name);
    Object.assign(form.elements[name], { min: property.minimum, max: property.maximum });
    form.elements[name].title = `${property.description} ${property.minimum}–${property.maximum}`;
  }
  for (const name of ["prompt", "style", "visual_style"]) {
    const property = schema.property("TaskCreate", name);
    if (property.maxLength) form.elements[name].maxLength = property.maxLength;
  }
  form.elements.prompt.title = schema.property("TaskCreate", "prompt").description;
}

function addCharacterRow() {
  const rows = $("#character-rows");
  const most = state.schema ? state.schema.property("TaskCreate", "characters").maxItems : 8;
  if (rows.children.length >= most) {
    showError(new ApiError(0, `at most ${most} characters`));
    return;
  }
  const row = $("#character-row").content.firstElementChild.cloneNode(true);
  $(".remove", row).addEventListener("click", () => row.remove());
  rows.append(row);
  $('[data-part="name"]', row).focus();
}

/** The form as a TaskCreate body: empty optional fields left out (the service's defaults). */
function requestBody() {
  const form = $("#request-form").elements;
  const body = { prompt: form.prompt.value, language: form.language.value };
  for (const name of ["style", "visual_style"]) {
    if (form[name].value.trim()) body[name] = form[name].value;
  }
  for (const name of ["duration_s", "num_scenes"]) {
    const raw = form[name].value.trim();
    if (raw) body[name] = Number(raw);
  }
  body.aspect_ratio = form.aspect_ratio.value;
  const characters = [...document.querySelectorAll("#character-rows .character-row")]
    .map((row) => ({
      name: $('[data-part="name"]', row).value,
      description: $('[data-part="description"]', row).value,
    }))
    .filter((character) => character.name.trim() || character.description.trim());
  if (characters.length) body.characters = characters;
  return body;
}

async function submitRequest(event) {
  event.preventDefault();
  clearError();
  const button = $("#generate");
  button.disabled = true;
  try {
    const { body: task } = await callJson("POST", "api/tasks/", { body: requestBody() });
    showTask(task);
    refreshTasks();
  } catch (error) {
    showError(error);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// A task: live progress while it runs (the events stream), then its storyboard.

function isFinished(task) {
  return task.status === "completed" || task.status === "failed";
}

function showTask(task) {
  if (state.following) state.following.abort();
  state.following = null;
  state.task = task;
  showProgress(task);
  if (isFinished(task)) renderScript(task);
  else {
    $("#script").hidden = true;
    $("#empty").hidden = true;
    follow(task.task_id);
  }
}

function showProgress(status) {
  const box = $("#progress");
  const finished = status.status === "completed" || status.status === "failed";
  box.hidden = status.status === "completed";
  box.dataset.status = status.status;
  $("#progress-stage").textContent = STAGES[status.stage] || status.stage || status.status;
  const details = [`${status.progress ?? 0}%`];
  if (status.generated_tokens) details.push(`${status.generated_tokens} tokens`);
  if (status.status === "failed" && status.error) details.push(status.error);
  if (!finished) details.push(`task ${status.task_id}`);
  $("#progress-detail").textContent = details.join(" · ");
  $("#progress-bar").style.width = `${Math.max(2, status.progress ?? 0)}%`;
}

async function follow(taskId) {
  const controller = new AbortController();
  state.following = controller;
  try {
    for await (const event of taskEvents(taskId, controller.signal)) {
      if (event.type === "status") showProgress(JSON.parse(event.data));
      else if (event.type === "done") return finish(JSON.parse(event.data));
      else if (event.type === "error") throw errorOfEvent(JSON.parse(event.data));
    }
    // The stream ended without `done` (a proxy cut it): read the task instead.
    await pollTask(taskId, controller.signal);
  } catch (error) {
    if (error.name !== "AbortError") showError(error);
  } finally {
    if (state.following === controller) state.following = null;
  }
}

function errorOfEvent(data) {
  const error = data.error || {};
  return new ApiError(0, error.message || "the task stream failed", error.fields || []);
}

async function pollTask(taskId, signal) {
  for (;;) {
    const { body: task } = await callJson("GET", `api/tasks/${encodeURIComponent(taskId)}`, {
      signal,
    });
    showProgress(task);
    if (isFinished(task)) return finish(task);
    await sleep(TASK_POLL_MS);
  }
}

function finish(task) {
  state.task = task;
  showProgress(task);
  renderScript(task);
  refreshTasks();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// The storyboard: title and look, a ruler and the scene cards, widths to scale.

function renderScript(task) {
  const script = task.result;
  $("#empty").hidden = !!script;
  $("#script").hidden = !script;
  if (!script) {
    if (task.status === "failed") $("#empty").hidden = true;
    return;
  }
  $("#script-title").textContent = script.title;
  const meta = [
    script.language,
    `${formatSeconds(script.total_duration)} total`,
    `${script.scenes.length} scene${script.scenes.length === 1 ? "" : "s"}`,
    script.aspect_ratio,
    script.visual_style,
    task.source && `written by ${task.source}`,
    task.revision && `revision ${task.revision}${task.revision_source ? ` (${task.revision_source})` : ""}`,
  ].filter(Boolean);
  $("#script-meta").textContent = meta.join(" · ");
  const note = task.revision_note || task.fallback_reason;
  $("#script-note").hidden = !note;
  $("#script-note").textContent = note || "";
  $("#cast").replaceChildren(
    ...(script.characters || []).map((character) =>
      el("li", {}, el("b", { text: character.name }), ` ${character.description}`),
    ),
  );
  renderTimeline(script);
}

function formatSeconds(seconds) {
  return `${Number.isInteger(seconds) ? seconds : seconds.toFixed(1)} s`;
}

/** Seconds to pixels: the shortest card MIN_CARD_PX wide at least, the timeline as wide as its
 * box at least (it scrolls when longer). The ruler above the cards uses the same widths. */
function pixelsPerSecond(script) {
  const shortest = Math.min(...script.scenes.map((scene) => scene.duration));
  const gaps = CARD_GAP_PX * (script.scenes.length - 1);
  const room = $("#timeline-scroll").clientWidth - gaps - 1; // 1 px for sub-pixel sums
  return Math.max(MIN_CARD_PX / shortest, room / script.total_duration);
}

function renderTimeline(script) {
  const perSecond = pixelsPerSecond(script);
  let start = 0;
  const segments = [];
  for (const scene of script.scenes) {
    segments.push(rulerSegment(scene, start, scene.duration * perSecond));
    start += scene.duration;
  }
  $("#ruler").replaceChildren(...segments);
  $("#timeline").replaceChildren(
    ...script.scenes.map((scene) => sceneCard(scene, scene.duration * perSecond)),
  );
}

function rulerSegment(scene, start, width) {
  return el(
    "div",
    {
      class: "segment",
      style: { width: `${width}px` },
      title: `Scene ${scene.scene_number}: ${formatSeconds(start)} – ${formatSeconds(start + scene.duration)}`,
    },
    el("b", { text: `${scene.scene_number}` }),
    el("span", { text: clock(start) }),
  );
}

/** 75.5 → "1:15". */
function clock(seconds) {
  const whole = Math.floor(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

function sceneCard(scene, width) {
  const card = el("article", {
    class: "scene",
    dataset: { scene: scene.scene_number },
    style: { width: `${width}px` },
  });
  card.append(
    el(
      "header",
      {},
      el("span", { class: "number", text: `${scene.scene_number}` }),
      el("span", { class: "duration", text: formatSeconds(scene.duration) }),
      el("span", { class: "camera", text: scene.camera }),
    ),
    el("p", { class: "description", text: scene.description }),
    el("p", { class: "action" }, el("span", { class: "label", text: "Action" }), scene.action),
    el("blockquote", { class: "narration", text: scene.narration || "—" }),
    el(
      "p",
      { class: "visual" },
      el("span", { class: "label", text: "Visual prompt" }),
      el("code", { text: scene.visual_prompt }),
    ),
    scene.characters && scene.characters.length
      ? el("ul", { class: "chips" }, scene.characters.map((name) => el("li", { text: name })))
      : null,
    el(
      "footer",
      { class: "actions" },
      el("button", { type: "button", dataset: { action: "edit" }, onclick: () => editScene(card, scene), text: "Edit" }),
      el("button", { type: "button", dataset: { action: "regenerate" }, onclick: () => askRegenerate(card, scene), text: "Regenerate" }),
      el("button", { type: "button", class: "danger", dataset: { action: "delete" }, onclick: (event) => deleteScene(event.target, scene), text: "Delete" }),
    ),
  );
  return card;
}

// ---------------------------------------------------------------------------------------------
// Scene edits: PATCH, regenerate, delete. Each asks ?wait=true and names the revision it saw
// (If-Match), so an edit of a script that moved on is a 409 rather than a lost update. A 202
// (the edit still running) is followed until the task shows a newer revision.

function editScene(card, scene) {
  clearError();
  const cameras = state.schema.values("Camera");
  const names = (state.task.result.characters || []).map((character) => character.name);
  const field = (label, input) => el("label", {}, label, input);
  const text = (name, rows = 2) => el("textarea", { name, rows }, scene[name]);
  const form = el(
    "form",
    { class: "scene-edit", novalidate: true },
    field("Description", text("description")),
    el(
      "div",
      { class: "row" },
      field("Duration (s)", el("input", { name: "duration", type: "number", step: "0.5", value: scene.duration })),
      field(
        "Camera",
        el("select", { name: "camera" }, cameras.map((value) => el("option", { value, text: value, selected: value === scene.camera }))),
      ),
    ),
    field("Action", text("action")),
    field("Narration", text("narration")),
    field("Visual prompt", text("visual_prompt", 3)),
    names.length
      ? el(
          "fieldset",
          { class: "scene-characters" },
          el("legend", { text: "Characters" }),
          names.map((name) =>
            el("label", { class: "check" }, el("input", { type: "checkbox", name: "characters", value: name, checked: scene.characters.includes(name) }), name),
          ),
        )
      : null,
    el(
      "footer",
      { class: "actions" },
      el("button", { type: "submit", class: "primary", text: "Save" }),
      el("button", { type: "button", class: "quiet", text: "Cancel", onclick: () => renderScript(state.task) }),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const changes = sceneChanges(form, scene);
    if (!Object.keys(changes).length) return renderScript(state.task);
    runEdit("PATCH", `scenes/${scene.scene_number}`, changes, form);
  });
  card.classList.add("editing");
  card.replaceChildren(
    el("header", {}, el("span", { class: "number", text: `${scene.scene_number}` }), el("span", { class: "camera", text: "editing" })),
    form,
  );
  form.elements.narration.focus();
}

/** The fields the form changed, in the scene's types. */
function sceneChanges(form, scene) {
  const changes = {};
  for (const name of ["description", "action", "narration", "visual_prompt", "camera"]) {
    if (form.elements[name].value !== scene[name]) changes[name] = form.elements[name].value;
  }
  const duration = form.elements.duration.value.trim();
  if (Number(duration) !== scene.duration) changes.duration = duration === "" ? null : Number(duration);
  const boxes = [...form.querySelectorAll('input[name="characters"]')];
  if (boxes.length) {
    const chosen = boxes.filter((box) => box.checked).map((box) => box.value);
    if (chosen.join("\n") !== scene.characters.join("\n")) changes.characters = chosen;
  }
  return changes;
}

function askRegenerate(card, scene) {
  clearError();
  const footer = $("footer.actions", card);
  const instruction = el("input", { name: "instruction", placeholder: "instruction (optional), e.g. make it night" });
  const form = el(
    "form",
    { class: "regenerate" },
    instruction,
    el("button", { type: "submit", class: "primary", text: "Regenerate" }),
    el("button", { type: "button", class: "quiet", text: "Cancel", onclick: () => renderScript(state.task) }),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = instruction.value.trim();
    card.classList.add("editing");
    runEdit("POST", `scenes/${scene.scene_number}/regenerate`, text ? { instruction: text } : undefined, form);
  });
  footer.replaceWith(form);
  instruction.focus();
}

function deleteScene(button, scene) {
  clearError();
  if (button.dataset.armed !== "true") {
    button.dataset.armed = "true";
    button.textContent = "Really delete?";
    setTimeout(() => {
      if (button.isConnected) {
        button.dataset.armed = "false";
        button.textContent = "Delete";
      }
    }, 5000);
    return;
  }
  runEdit("DELETE", `scenes/${scene.scene_number}`, undefined, button);
}

async function runEdit(method, path, body, control) {
  if (state.busy) return;
  state.busy = true;
  const task = state.task;
  const busy = control.closest(".scene") || control;
  busy.classList.add("busy");
  for (const node of busy.querySelectorAll ? busy.querySelectorAll("button") : []) node.disabled = true;
  if (control.tagName === "BUTTON") control.disabled = true;
  clearError();
  try {
    const response = await callJson(method, `api/tasks/${encodeURIComponent(task.task_id)}/${path}`, {
      body,
      query: { wait: "true" },
      headers: task.revision ? { "If-Match": `"${task.revision}"` } : {},
    });
    const edited =
      response.status === 200 && response.body && response.body.result
        ? response.body
        : await newerRevision(task, response.headers.get("Location"));
    state.task = edited;
    renderScript(edited);
    refreshTasks();
  } catch (error) {
    showError(error);
    busy.classList.remove("busy");
    for (const node of busy.querySelectorAll ? busy.querySelectorAll("button") : []) node.disabled = false;
    if (control.tagName === "BUTTON") control.disabled = false;
  } finally {
    state.busy = false;
  }
}

/** After a 202: the task once it shows a revision newer than `task`'s (bounded). When the 202
 * names another resource (an edit job), a failure reported there is shown as the error. */
async function newerRevision(task, location) {
  const taskPath = `api/tasks/${encodeURIComponent(task.task_id)}`;
  const deadline = Date.now() + EDIT_WAIT_MS;
  while (Date.now() < deadline) {
    await sleep(EDIT_POLL_MS);
    if (location && !new URL(location, document.baseURI).pathname.endsWith(`/${taskPath}`)) {
      const { body: job } = await callJson("GET", location);
      if (job && job.status === "failed") throw new ApiError(0, job.error || "the edit failed");
    }
    const { body: latest } = await callJson("GET", taskPath);
    if ((latest.revision || 0) > (task.revision || 0)) return latest;
  }
  throw new ApiError(0, "the edit was accepted but is still not done; reload the task later");
}

// ---------------------------------------------------------------------------------------------
// Exports and the recent tasks.

function fillExports(schema) {
  $("#export-buttons").replaceChildren(
    ...schema.values("ExportFormat").map((format) =>
      el("button", {
        type: "button",
        class: "small",
        dataset: { format },
        text: format,
        title: `GET /api/tasks/{id}/export?format=${format}`,
        onclick: () => exportScript(format),
      }),
    ),
  );
}

async function exportScript(format) {
  clearError();
  try {
    await download(
      `api/tasks/${encodeURIComponent(state.task.task_id)}/export`,
      { format },
      `storyboard.${format}`,
    );
  } catch (error) {
    showError(error);
  }
}

async function refreshTasks() {
  try {
    const { body } = await callJson("GET", "api/tasks/", { query: { limit: 20 } });
    setKeyState(storedKey() ? "accepted" : "off");
    $("#task-list").replaceChildren(...body.items.map(taskItem));
    $("#task-list-empty").hidden = body.items.length > 0;
    $("#task-list-empty").textContent = "No tasks yet.";
  } catch (error) {
    $("#task-list").replaceChildren();
    if (error instanceof ApiError && error.status === 401) {
      setKeyState("required");
      $("#task-list-empty").hidden = false;
      $("#task-list-empty").textContent = "Enter the API key above to see your tasks.";
    } else showError(error);
  }
}

function taskItem(task) {
  const when = new Date(task.created_at).toLocaleString();
  const title = task.result ? task.result.title : task.prompt;
  return el(
    "li",
    {},
    el(
      "button",
      {
        type: "button",
        class: state.task && state.task.task_id === task.task_id ? "task current" : "task",
        title: task.prompt,
        onclick: () => openTask(task.task_id),
      },
      el("span", { class: "task-title", text: title }),
      el(
        "span",
        { class: "task-meta" },
        el("span", { class: `status ${task.status}`, text: task.status }),
        ` ${task.source || ""} · ${when}`,
      ),
    ),
  );
}

async function openTask(taskId) {
  clearError();
  try {
    const { body } = await callJson("GET", `api/tasks/${encodeURIComponent(taskId)}`);
    showTask(body);
    refreshTasks();
  } catch (error) {
    showError(error);
  }
}

// ---------------------------------------------------------------------------------------------

async function start() {
  $("#api-key").value = storedKey();
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearError();
    storeKey($("#api-key").value.trim());
    refreshTasks();
  });
  $("#forget-key").addEventListener("click", () => {
    $("#api-key").value = "";
    storeKey("");
    refreshTasks();
  });
  $("#error-close").addEventListener("click", clearError);
  $("#add-character").addEventListener("click", addCharacterRow);
  $("#request-form").addEventListener("submit", submitRequest);
  $("#refresh-tasks").addEventListener("click", refreshTasks);
  window.addEventListener("resize", () => {
    // Cards to scale with the new width, unless a card's edit form is open.
    if (state.task && state.task.result && !$(".scene.editing")) renderTimeline(state.task.result);
  });
  showHealth();
  try {
    state.schema = await loadSchema();
    fillForm(state.schema);
    fillExports(state.schema);
  } catch (error) {
    showError(error);
  }
  await refreshTasks();
  document.body.dataset.ready = "true";
}

start();
