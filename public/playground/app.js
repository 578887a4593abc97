// The playground: a reference client for the API. api.js talks to the Worker; this file keeps the
// page in step with what the API says.
import { ApiError, api, download, followPrompt, session, watchChatroom } from "./api.js";
import { attachmentName, drawUsageChart, snippetNodes } from "./data.js";

const $ = (selector) => document.querySelector(selector);
const PAGE_SIZE = 20;

// ── Notices: every failure shows the API's own message ──────────────────────────────────────────

function showError(err) {
  if (err instanceof ApiError) {
    const details = err.details.map((detail) => `${detail.path}: ${detail.message}`).join("; ");
    $("#error").textContent = details ? `${err.message} (${details})` : err.message;
    // A token that stopped working (expired, logged out elsewhere, password changed) ends the session here
    // too; a wrong password typed to confirm an action (INVALID_CREDENTIALS) does not.
    if (err.status === 401 && err.code !== "INVALID_CREDENTIALS" && session.token) signOutLocally();
  } else {
    $("#error").textContent = `Something went wrong in the page: ${err.message}`;
  }
}

function showStatus(text) {
  $("#status").textContent = text;
}

/**
 * Runs a form's or a button's action: clears the last notice, shows a failure, and ignores clicks while
 * the action runs (aria-disabled, not disabled: a disabled button would lose the keyboard focus).
 */
function on(element, type, action) {
  element.addEventListener(type, async (event) => {
    if (type === "submit") event.preventDefault();
    const button = event.submitter ?? (event.currentTarget.tagName === "BUTTON" ? event.currentTarget : null);
    if (button?.getAttribute("aria-disabled") === "true") return;
    button?.setAttribute("aria-disabled", "true");
    $("#error").textContent = "";
    showStatus("");
    try {
      await action(event);
    } catch (err) {
      showError(err);
    } finally {
      button?.removeAttribute("aria-disabled");
    }
  });
}

const fields = (form) => Object.fromEntries(new FormData(form));

// ── Sign up, verify, log in ─────────────────────────────────────────────────────────────────────

async function sendCode(phoneNumber) {
  const { otp } = await api("POST", "/auth/send-otp", { phoneNumber });
  $("#verify").hidden = false;
  $("#verify-form").phoneNumber.value = phoneNumber;
  // OTP_DELIVERY=response (local development) mocks the SMS by returning the code.
  $("#otp-note").textContent = otp ? `Mocked SMS: your code is ${otp}.` : "A code is on its way by SMS.";
  if (otp) $("#verify-form").otp.value = otp;
  $("#verify-form").otp.focus();
}

on($("#signup-form"), "submit", async (event) => {
  const { phoneNumber, password } = fields(event.target);
  const { user } = await api("POST", "/auth/signup", { phoneNumber, password });
  showStatus("Signed up. Verify your phone number to log in.");
  await sendCode(user.phoneNumber);
});

on($("#resend-otp"), "click", () => sendCode($("#verify-form").phoneNumber.value));

on($("#verify-form"), "submit", async (event) => {
  const { phoneNumber, otp } = fields(event.target);
  const { authToken } = await api("POST", "/auth/verify-otp", { phoneNumber, otp });
  await signIn(authToken);
});

on($("#login-form"), "submit", async (event) => {
  const { phoneNumber, password } = fields(event.target);
  try {
    const { authToken } = await api("POST", "/auth/login", { phoneNumber, password });
    await signIn(authToken);
  } catch (err) {
    if (err.code === "PHONE_NOT_VERIFIED") {
      $("#verify").hidden = false;
      $("#verify-form").phoneNumber.value = phoneNumber;
    }
    throw err;
  }
});

on($("#logout"), "click", async () => {
  await api("POST", "/auth/logout");
  signOutLocally();
  showStatus("Logged out.");
});

async function signIn(token) {
  session.start(token);
  $("#verify").hidden = true;
  for (const form of document.querySelectorAll("#signed-out form")) form.reset();
  await enter();
}

async function enter() {
  $("#signed-out").hidden = true;
  $("#signed-in").hidden = false;
  $("#account").hidden = false;
  await Promise.all([refreshAccount(), loadRooms(), loadModels()]);
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("chatroom");
  if (fromLink && rooms.some((room) => room.id === fromLink)) await openRoom(fromLink);
}

function signOutLocally() {
  session.end();
  closeRoom();
  clearTimeout(proWatch);
  $("#account").hidden = true;
  $("#signed-in").hidden = true;
  $("#signed-out").hidden = false;
  $("#billing-offer").replaceChildren();
  models = undefined;
  search = null;
  $("#search").hidden = true;
  $("#search-results").replaceChildren();
  $("#your-data").open = false;
}

// ── Account: tier, today's quota, billing ───────────────────────────────────────────────────────

let proWatch;
let tier;

async function refreshAccount() {
  const { user } = await api("GET", "/user/me");
  $("#phone").textContent = user.phoneNumber;
  $("#tier").textContent = user.tier === "pro" ? "Pro" : "Basic";
  $("#tier").dataset.tier = user.tier;
  $("#upgrade").hidden = user.tier === "pro";
  $("#manage-billing").hidden = user.tier !== "pro";
  tier = user.tier;
  renderModels();
  renderUsage(user.usage);
  return user;
}

function renderUsage({ used, limit, resetsAt }) {
  const resets = new Date(resetsAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  $("#quota").textContent =
    limit === null ? `${used} prompts today, no limit` : `${used} of ${limit} prompts used today · resets at ${resets}`;
}

/** Shows the Stripe page as a link: it opens in a new tab, and this page keeps the session. */
function offerBillingPage(url, text) {
  const link = Object.assign(document.createElement("a"), { href: url, target: "_blank", rel: "noopener" });
  link.textContent = text;
  $("#billing-offer").replaceChildren(link);
  link.focus();
}

on($("#upgrade"), "click", async () => {
  const { url } = await api("POST", "/billing/subscribe/pro");
  offerBillingPage(url, "Pay on Stripe Checkout (new tab)");
  showStatus("Checkout is ready. This page turns Pro as soon as Stripe confirms the payment.");
  waitForPro(Date.now() + 15 * 60_000);
});

on($("#manage-billing"), "click", async () => {
  const { url } = await api("POST", "/billing/portal");
  offerBillingPage(url, "Open the billing portal (new tab)");
});

/** Stripe tells the Worker (webhook), not the page: ask again every 2 s until Pro, for 15 minutes. */
function waitForPro(until) {
  clearTimeout(proWatch);
  proWatch = setTimeout(async () => {
    try {
      if ((await refreshAccount()).tier === "pro") {
        $("#billing-offer").replaceChildren();
        showStatus("You are on Pro: no daily limit.");
        return;
      }
    } catch (err) {
      showError(err);
    }
    if (Date.now() < until && session.token) waitForPro(until);
  }, 2_000);
}

// ── Chatrooms ───────────────────────────────────────────────────────────────────────────────────

let rooms = [];

/** A chatroom created without a name has none until its automatic title arrives (a `chatroom` event). */
const nameOf = (room) => room.name ?? "New chat";

async function loadRooms() {
  ({ chatrooms: rooms } = await api("GET", "/chatroom"));
  renderRooms();
}

function renderRooms() {
  const list = $("#rooms");
  list.replaceChildren();
  for (const room of rooms) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = nameOf(room);
    button.classList.toggle("untitled", room.name === null);
    if (room.id === current?.id) button.setAttribute("aria-current", "true");
    on(button, "click", () => openRoom(room.id));
    const item = document.createElement("li");
    item.append(button);
    list.append(item);
  }
}

on($("#create-room-form"), "submit", async (event) => {
  const { name } = fields(event.target);
  const { chatroom } = await api("POST", "/chatroom", name.trim() ? { name } : {});
  event.target.reset();
  await openRoom(chatroom.id);
});

on($("#rename-form"), "submit", async (event) => {
  const { chatroom } = await api("PATCH", `/chatroom/${current.id}`, fields(event.target));
  event.target.closest("details").open = false;
  showChatroom(chatroom);
  await loadRooms();
});

on($("#delete-room"), "click", async () => {
  if (!confirm(`Delete “${$("#room-name").textContent}” and all its messages?`)) return;
  await api("DELETE", `/chatroom/${current.id}`);
  closeRoom();
  await loadRooms();
  showStatus("Chatroom deleted.");
});

/** The open chatroom's name and settings, as the API last described them (a load, a save, a `chatroom` event). */
function showChatroom(chatroom) {
  current.chatroom = chatroom;
  $("#room-name").textContent = nameOf(chatroom);
  $("#room-name").classList.toggle("untitled", chatroom.name === null);
  // A form being filled in keeps what the user typed.
  if (!$("#rename-form").closest("details").open)
    $("#rename-form").elements.namedItem("name").value = chatroom.name ?? "";
  if (!$("#settings").open) fillSettings(chatroom);
  const listed = rooms.find((room) => room.id === chatroom.id);
  if (listed && listed.name !== chatroom.name) {
    listed.name = chatroom.name;
    renderRooms();
  }
}

// ── Chatroom settings: system instruction and model ─────────────────────────────────────────────

/** GET /models: undefined until asked, null when the API does not offer a choice of model. */
let models;

async function loadModels() {
  try {
    ({ models } = await api("GET", "/models"));
  } catch (err) {
    models = null;
    if (err.status !== 404) showError(err);
  }
  renderModels();
}

/** The model list: Pro-only models are offered to Pro users only. */
function renderModels() {
  $("#model-field").hidden = !models;
  if (!models) return;
  const select = $("#settings-form").elements.namedItem("model");
  const chosen = select.value;
  const fallback = models.find((model) => model.default);
  const options = [new Option(fallback ? `Default (${fallback.label})` : "Default", "")];
  for (const model of models) {
    const proOnly = !model.tiers.includes("basic");
    const option = new Option(proOnly ? `${model.label} (Pro only)` : model.label, model.id);
    option.disabled = proOnly && tier !== "pro";
    options.push(option);
  }
  select.replaceChildren(...options);
  select.value = chosen;
  const locked = options.some((option) => option.disabled);
  $("#model-hint").textContent = locked ? "Pro-only models need the Pro plan." : "";
}

function fillSettings(chatroom) {
  const form = $("#settings-form");
  form.elements.namedItem("systemInstruction").value = chatroom.systemInstruction ?? "";
  const select = form.elements.namedItem("model");
  // A model the list no longer offers is still shown as the one set.
  if (chatroom.model && models && !models.some((model) => model.id === chatroom.model)) {
    select.append(new Option(chatroom.model, chatroom.model));
  }
  select.value = chatroom.model ?? "";
}

$("#settings").addEventListener("toggle", (event) => {
  if (event.target.open && current?.chatroom) fillSettings(current.chatroom);
});

on($("#settings-form"), "submit", async (event) => {
  const { systemInstruction, model } = fields(event.target);
  const body = { systemInstruction: systemInstruction.trim() ? systemInstruction : null };
  if (models) body.model = model || null;
  const { chatroom } = await api("PATCH", `/chatroom/${current.id}`, body);
  event.target.closest("details").open = false;
  showChatroom(chatroom);
  showStatus("Settings saved: they apply to the prompts sent from now on.");
});

// ── One chatroom: its conversation, live ────────────────────────────────────────────────────────

/**
 * The open chatroom. The page shows its active branch: `turns` holds one entry per prompt on it
 * (promptId → turn), each with its reply. `text` is the reply as far as it is known, built from `delta`
 * events while the prompt is pending. `versions` remembers every message seen while the chatroom is
 * open by its place (parent, role, version index), so the arrows can reach the other versions.
 */
let current = null;

async function openRoom(id, { found = null } = {}) {
  closeRoom();
  const opened = {
    id,
    found,
    turns: new Map(),
    versions: new Map(),
    chatroom: null,
    cursor: null,
    loaded: false,
    early: [],
    watcher: null,
  };
  current = opened;
  await loadRooms();
  const room = rooms.find((candidate) => candidate.id === id);
  if (current !== opened) return;
  if (!room) {
    closeRoom();
    return showStatus("That chatroom does not exist any more.");
  }
  history.replaceState(null, "", `#chatroom=${id}`);
  $("#room-name").textContent = nameOf(room);
  $("#room-name").classList.toggle("untitled", room.name === null);
  $("#rename-form").elements.namedItem("name").value = room.name ?? "";
  $("#settings").open = false;
  $("#sharing").open = false;
  $("#shares").replaceChildren();
  $("#room").hidden = false;
  $("#no-room").hidden = true;
  $("#turns").replaceChildren();
  // The stream is opened first and the branch read once it is connected, so nothing falls in between;
  // events that arrive while the branch loads are applied after it.
  opened.watcher = watchChatroom(id, {
    onOpen: () => {
      if (!opened.loaded) loadLatest(opened).catch(showError);
    },
    onEvent: (name, data) => (opened.loaded ? handleEvent(name, data) : opened.early.push([name, data])),
    onError: showError,
    onState: (state) => {
      $("#live-state").textContent = state === "live" ? "● Live" : "Reconnecting…";
      $("#live-state").dataset.state = state;
    },
  });
  $("#prompt").focus();
}

function closeRoom() {
  for (const turn of current?.turns.values() ?? []) turn.unfollow?.();
  current?.watcher?.close();
  current = null;
  $("#room").hidden = true;
  $("#no-room").hidden = false;
  $("#live-state").textContent = "";
  if (location.hash) history.replaceState(null, "", location.pathname);
}

/** The chatroom and the end of its active branch (GET /chatroom/:id); live events wait meanwhile. */
async function loadLatest(room) {
  room.loaded = false;
  const { chatroom } = await api("GET", `/chatroom/${room.id}`);
  if (room !== current) return;
  showChatroom(chatroom);
  showBranch(chatroom.messages);
  room.loaded = true;
  for (const [name, data] of room.early.splice(0)) handleEvent(name, data);
  if (room.found) await revealFound(room);
}

async function loadOlder(room) {
  const page = await api("GET", `/chatroom/${room.id}/messages?limit=${PAGE_SIZE}&before=${room.cursor}`);
  if (room !== current) return;
  applyMessages(page.messages);
  room.cursor = page.nextCursor;
  $("#load-older").hidden = room.cursor === null;
}

on($("#load-older"), "click", () => loadOlder(current));

/** The message a search result opened: older pages are loaded until it is shown, then it is marked. */
async function revealFound(room) {
  const holds = (turn) => turn.id === room.found || turn.replyId === room.found;
  let turn = [...room.turns.values()].find(holds);
  for (let pages = 0; !turn && room.cursor && room === current && pages < 50; pages++) {
    await loadOlder(room);
    turn = [...room.turns.values()].find(holds);
  }
  if (!turn) return;
  const part = turn.element.querySelector(turn.id === room.found ? ".asked" : ".reply");
  part.classList.add("found");
  part.scrollIntoView({ block: "center" });
  room.found = null;
}

/**
 * The last messages of the active branch, in branch order, replace what the page shows: turns still on
 * it are kept (with their focus and live text), the others leave. A page's cursor is its oldest
 * message, and only the first prompt has no parent, so the page knows whether older messages exist.
 */
function showBranch(messages) {
  const room = current;
  const onBranch = new Set(messages.map((message) => (message.role === "user" ? message.id : message.replyTo)));
  keepingFocus(() => {
    for (const turn of [...room.turns.values()]) if (!onBranch.has(turn.id)) removeTurn(turn);
    applyMessages(messages, { whole: true });
  });
  const oldest = messages[0];
  room.cursor = oldest && oldest.parentId !== null ? oldest.id : null;
  $("#load-older").hidden = room.cursor === null;
}

/**
 * Messages of the active branch, oldest first: prompts are `user` messages, replies name theirs in
 * `replyTo`. In a `whole` branch a settled prompt's reply, if it has one, comes right after it.
 */
function applyMessages(messages, { whole = false } = {}) {
  // Rendered once all is applied: a prompt with its reply cleared for a moment would move the focus away.
  const changed = new Set();
  for (const message of messages) {
    remember(message);
    if (message.role === "user") {
      const turn = turnFor(message.id);
      const restarted = message.status === "pending" && turn.status !== "pending";
      Object.assign(turn, {
        content: message.content,
        status: message.status,
        parentId: message.parentId,
        version: message.version,
      });
      if (restarted || (whole && message.status !== "pending")) clearReply(turn);
      if (message.status === "pending") follow(turn);
      changed.add(turn);
    } else {
      const turn = turnFor(message.replyTo);
      fillReply(turn, message);
      changed.add(turn);
    }
  }
  for (const turn of changed) render(turn);
}

function fillReply(turn, reply) {
  Object.assign(turn, {
    text: reply?.content ?? "",
    tokens: reply?.tokens,
    model: reply?.model,
    replyId: reply?.id,
    replyVersion: reply?.version,
    feedback: reply?.feedback ?? null,
    note: "",
  });
}

const clearReply = (turn) => fillReply(turn, null);

function removeTurn(turn) {
  turn.unfollow?.();
  turn.element.remove();
  current.turns.delete(turn.id);
}

/** Where the active branch ends as the page shows it: the last prompt, or its reply once it has one. */
function shownLeaf() {
  const last = [...current.turns.keys()].sort().at(-1);
  const turn = last && current.turns.get(last);
  if (!turn) return null;
  return turn.status !== "pending" && turn.replyId ? turn.replyId : turn.id;
}

// ── Versions: every message seen, by its place in the tree ──────────────────────────────────────

const placeOf = (parentId, role, index) => `${parentId}/${role}/${index}`;

function remember(message) {
  if (message?.version)
    current.versions.set(placeOf(message.parentId, message.role, message.version.index), message.id);
}

/**
 * The version `step` away (-1, +1) of the message at a place: { id } when known, { index } of a version
 * this page has not seen (the API lists no versions: the page only knows those it was shown), or
 * nothing past the first or last version.
 */
function versionAt(parentId, role, version, step) {
  const index = version.index + step;
  if (index < 1 || index > version.count) return undefined;
  // Forward-compatible: neighbours named by the API itself, should it add them.
  const named = step < 0 ? version.previousId : version.nextId;
  return { index, id: named ?? current.versions.get(placeOf(parentId, role, index)) };
}

async function switchTo(messageId) {
  const room = current;
  const { messages } = await api("PUT", `/chatroom/${room.id}/active-branch`, { messageId });
  if (room === current) showBranch(messages);
}

/**
 * Runs a change of the shown branch. A focused control whose turn left the page is found again at the
 * same place in the new branch (the other version's turn has the same parent).
 */
const FOCUS_NEXT_BEST = {
  "prompt-prev": "prompt-next",
  "prompt-next": "prompt-prev",
  "save-edit": "edit",
  "cancel-edit": "edit",
};

function keepingFocus(change) {
  const focused = document.activeElement;
  const element = focused?.closest(".turn");
  const before = element && [...current.turns.values()].find((turn) => turn.element === element);
  change();
  if (!before || focused.isConnected) return;
  const after = [...current.turns.values()].find((turn) => turn.parentId === before.parentId);
  const kind = focused.classList[0];
  const target = [kind, FOCUS_NEXT_BEST[kind], "edit"]
    .map((name) => name && after?.element.querySelector(`.${name}`))
    .find((control) => control && usable(control));
  (target ?? $("#prompt")).focus();
}

const usable = (button) => !button.disabled && !button.closest("[hidden]");

// ── Live events ─────────────────────────────────────────────────────────────────────────────────

/**
 * A prompt found pending in the branch was being written before this page listened: its own stream
 * starts with all the text so far, so the chatroom's deltas for it are left to that stream meanwhile.
 */
function follow(turn) {
  if (turn.following) return;
  turn.following = true;
  const room = current;
  const stop = new AbortController();
  turn.unfollow = () => stop.abort();
  followPrompt(
    room.id,
    turn.id,
    (name, data) => {
      if (room !== current || room.turns.get(turn.id) !== turn) return;
      if (name === "prompt") turn.text = "";
      handleEvent(name, data, { following: true });
    },
    stop.signal,
  )
    .catch(showError)
    .finally(() => {
      turn.following = false;
    });
}

/** What ended the session a stream was opened with (the `revoked` event's reason). */
const SESSION_ENDED = {
  logout: "Your session ended: this sign-in was logged out. Sign in again.",
  "logout-all": "Your session ended: you logged out on every device. Sign in again.",
  "password-changed": "Your session ended: the password was changed. Sign in again.",
  "password-reset": "Your session ended: the password was reset. Sign in again.",
};

function handleEvent(name, data, { following = false } = {}) {
  const turn = current.turns.get(data.promptId ?? data.prompt?.id);
  if (turn?.following && !following && name !== "reply") return;
  switch (name) {
    case "prompt":
      return applyPrompt(data.prompt);
    case "delta":
      if (turn?.status !== "pending") return;
      turn.text += data.text;
      turn.note = "";
      return render(turn);
    case "retrying":
      if (!turn) return;
      turn.text = "";
      turn.note = `Gemini failed; trying again in ${data.retryInSeconds} s`;
      return render(turn);
    case "reply":
      applyPrompt(data.prompt);
      // A failed prompt gives its quota unit back, and so does one stopped before any text.
      return refreshAccount().catch(showError);
    case "branch":
      // Sends extend the branch shown; an edit, a regeneration or a switch (here or on another device)
      // moves it elsewhere: read it again.
      if (data.activeLeafId !== shownLeaf()) loadLatest(current).catch(showError);
      return;
    case "chatroom":
      return showChatroom(data.chatroom);
    case "reset":
      return loadLatest(current).catch(showError);
    case "deleted":
      closeRoom();
      showStatus("This chatroom was deleted.");
      return loadRooms().catch(showError);
    case "revoked":
      signOutLocally();
      return showStatus(SESSION_ENDED[data.reason] ?? "Your session ended. Sign in again.");
  }
}

/**
 * The prompt as the API describes it. One not shown yet joins the page only if it follows the end of
 * the branch shown (a send); another (an edit, or a prompt on another branch) is only remembered, and a
 * `branch` event follows if the active branch moved to it. A prompt that turns pending again (retried,
 * regenerated) starts a new reply; one already pending keeps the text its deltas brought.
 */
function applyPrompt(prompt) {
  remember(prompt);
  remember(prompt.reply);
  if (!current.turns.has(prompt.id) && prompt.parentId !== shownLeaf()) return;
  const turn = turnFor(prompt.id);
  const restarted = prompt.status === "pending" && turn.status !== "pending";
  Object.assign(turn, {
    content: prompt.content,
    status: prompt.status,
    parentId: prompt.parentId,
    version: prompt.version,
  });
  if (prompt.status !== "pending" || restarted) fillReply(turn, prompt.reply);
  render(turn);
}

/** A 202 answer may reach the page after the stream has already moved the prompt on: it only fills gaps. */
function applyAccepted(prompt) {
  const turn = current.turns.get(prompt.id);
  if (!turn || turn.status === "failed" || turn.status === "cancelled") applyPrompt(prompt);
}

/** An edit or a regeneration ends the active branch at `turn`'s place: the turns after it leave the page. */
function cutAfter(turn, { itself = false } = {}) {
  keepingFocus(() => {
    for (const other of [...current.turns.values()])
      if (other.id > turn.id || (itself && other === turn)) removeTurn(other);
  });
}

on($("#send-form"), "submit", async (event) => {
  const { userMessage } = fields(event.target);
  const { prompt, usage } = await api("POST", `/chatroom/${current.id}/message`, { userMessage });
  event.target.reset();
  applyAccepted(prompt);
  renderUsage(usage);
});

$("#prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("#send-form").requestSubmit();
});

// ── Rendering one turn: the prompt, and its reply as it is written ─────────────────────────────

const STATES = {
  pending: "Writing…",
  completed: "Done",
  cancelled: "Stopped",
  failed: "Failed",
};

function turnFor(id) {
  let turn = current.turns.get(id);
  if (turn) return turn;
  const element = $("#turn-template").content.firstElementChild.cloneNode(true);
  turn = { id, element, content: "", status: undefined, text: "", note: "", following: false };
  clearReply(turn);
  current.turns.set(id, turn);
  wireTurn(turn);
  // Prompt ids are UUIDv7, so they sort by time, and along a branch each prompt is newer than the one
  // before it: insert before the first later turn.
  const later = [...current.turns.keys()].filter((other) => other > id).sort()[0];
  $("#turns").insertBefore(element, later ? current.turns.get(later).element : null);
  return turn;
}

function wireTurn(turn) {
  const { id, element } = turn;
  const shown = () => current?.turns.get(id) === turn;
  on(element.querySelector(".stop"), "click", async () => {
    const { prompt } = await api("POST", `/chatroom/${current.id}/message/${id}/cancel`);
    applyPrompt(prompt);
  });
  on(element.querySelector(".retry"), "click", async () => {
    const { prompt, usage } = await api("POST", `/chatroom/${current.id}/message/${id}/retry`);
    applyAccepted(prompt);
    renderUsage(usage);
  });
  on(element.querySelector(".regenerate"), "click", async () => {
    const before = turn.replyId;
    const { prompt, usage } = await api("POST", `/chatroom/${current.id}/message/${id}/regenerate`);
    renderUsage(usage);
    // Unless a reload already shows the branch as it now is.
    if (!shown()) return;
    cutAfter(turn);
    // Unless the stream already brought the new reply.
    if (turn.status === "completed" && turn.replyId === before) applyPrompt(prompt);
  });
  // Thumbs on a reply: pressing the rating it has takes it back.
  for (const thumb of element.querySelectorAll(".thumb")) {
    on(thumb, "click", async () => {
      const path = `/chatroom/${current.id}/message/${turn.replyId}/feedback`;
      const { rating } = thumb.dataset;
      const { reply } =
        turn.feedback?.rating === rating ? await api("DELETE", path) : await api("PUT", path, { rating });
      turn.feedback = reply.feedback;
      render(turn);
    });
  }
  for (const arrow of element.querySelectorAll(".versions button")) {
    on(arrow, "click", () => switchTo(arrow.dataset.target));
  }
  const editor = element.querySelector(".editor");
  const editBox = editor.elements.namedItem("userMessage");
  const edit = element.querySelector(".edit");
  const closeEditor = () => {
    editor.hidden = true;
    edit.setAttribute("aria-expanded", "false");
    edit.focus();
  };
  edit.addEventListener("click", () => {
    editor.hidden = false;
    edit.setAttribute("aria-expanded", "true");
    editBox.value = turn.content;
    editBox.focus();
  });
  element.querySelector(".cancel-edit").addEventListener("click", closeEditor);
  editBox.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) editor.requestSubmit();
    if (event.key === "Escape") closeEditor();
  });
  on(editor, "submit", async () => {
    const { userMessage } = fields(editor);
    const { prompt, usage } = await api("POST", `/chatroom/${current.id}/message/${id}/edit`, { userMessage });
    renderUsage(usage);
    if (!shown()) return;
    // The new version takes this prompt's place at the end of the active branch.
    cutAfter(turn, { itself: true });
    applyAccepted(prompt);
  });
}

/** The ‹ n/m › of a prompt or a reply with more than one version. */
function renderVersions(group, { parentId, role, version, noun }) {
  group.hidden = !version || version.count < 2;
  if (group.hidden) return;
  group.setAttribute("aria-label", `${noun} version ${version.index} of ${version.count}`);
  group.querySelector(".count").textContent = `${version.index}/${version.count}`;
  for (const [arrow, step] of [
    [group.firstElementChild, -1],
    [group.lastElementChild, 1],
  ]) {
    const target = versionAt(parentId, role, version, step);
    arrow.dataset.target = target?.id ?? "";
    arrow.disabled = !target?.id;
    arrow.title = !target
      ? `This is the ${step < 0 ? "first" : "newest"} version`
      : target.id
        ? `Show version ${target.index}`
        : `Version ${target.index} was made before this page opened the chatroom, and the API cannot list versions`;
  }
}

function render(turn) {
  const { element, status } = turn;
  const focused = element.querySelector("button:focus");
  element.dataset.status = status ?? "";
  element.querySelector(".prompt").textContent = turn.content;
  element.querySelector(".tools").hidden = !turn.content;
  renderVersions(element.querySelector(".asked .versions"), {
    parentId: turn.parentId,
    role: "user",
    version: turn.version,
    noun: "Prompt",
  });
  const reply = element.querySelector(".reply");
  reply.setAttribute("aria-busy", String(status === "pending"));
  reply.querySelector(".text").textContent = turn.text;
  let state = turn.note || STATES[status] || "";
  if (status === "pending" && !turn.text && !turn.note) state = "Waiting for Gemini…";
  if (status === "completed" && turn.tokens?.completion) state = `Done · ${turn.tokens.completion} tokens`;
  if (status === "completed" && turn.model) state += ` · ${turn.model}`;
  if (status === "cancelled" && !turn.text) state = "Stopped before any text";
  reply.querySelector(".state").textContent = state;
  const settled = status !== "pending" && turn.replyId;
  renderVersions(reply.querySelector(".versions"), {
    parentId: turn.id,
    role: "assistant",
    version: settled ? turn.replyVersion : undefined,
    noun: "Reply",
  });
  reply.querySelector(".stop").hidden = status !== "pending";
  reply.querySelector(".retry").hidden = status !== "failed" && status !== "cancelled";
  reply.querySelector(".regenerate").hidden = status !== "completed" || !turn.replyId;
  for (const thumb of reply.querySelectorAll(".thumb")) {
    thumb.hidden = status !== "completed" || !turn.replyId;
    thumb.setAttribute("aria-pressed", String(turn.feedback?.rating === thumb.dataset.rating));
  }
  // A keyboard user whose button just went away (Stop → Retry → Stop → done, the last version reached)
  // keeps a place nearby.
  if (focused && !usable(focused)) {
    const part = focused.closest(".asked, .reply");
    ([...part.querySelectorAll("button")].find(usable) ?? $("#prompt")).focus();
  }
}

// ── Search: every prompt and reply of every branch ──────────────────────────────────────────────

/** The search shown: its words and the cursor of its next page. */
let search = null;

on($("#search-form"), "submit", async (event) => {
  search = { q: fields(event.target).q, cursor: null };
  $("#search-results").replaceChildren();
  await searchMore();
});

on($("#search-more"), "click", () => searchMore());

async function searchMore() {
  const asked = search;
  const query = new URLSearchParams({ q: asked.q, limit: "10", ...(asked.cursor ? { cursor: asked.cursor } : {}) });
  const { results, nextCursor } = await api("GET", `/search?${query}`);
  if (asked !== search) return;
  asked.cursor = nextCursor;
  $("#search-results").append(...results.map(resultItem));
  const count = $("#search-results").children.length;
  $("#search-summary").textContent = count
    ? `${count}${nextCursor ? "+" : ""} found for “${asked.q}”`
    : `Nothing found for “${asked.q}”.`;
  $("#search-more").hidden = !nextCursor;
  $("#search").hidden = false;
}

function resultItem(result) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "result";
  const where = document.createElement("span");
  where.className = "where";
  const who = result.role === "user" ? "You" : "Gemini";
  where.textContent = `${result.chatroomName || "New chat"} · ${who} · ${new Date(result.createdAt).toLocaleDateString()}`;
  const snippet = document.createElement("span");
  snippet.className = "snippet";
  snippet.append(...snippetNodes(result.snippet, result.highlights));
  button.append(where, snippet);
  // Opening it moves the chatroom's active branch to the message (for every device, as the arrows do).
  on(button, "click", async () => {
    await api("PUT", `/chatroom/${result.chatroomId}/active-branch`, { messageId: result.messageId });
    await openRoom(result.chatroomId, { found: result.messageId });
  });
  const item = document.createElement("li");
  item.append(button);
  return item;
}

// ── Sharing the open chatroom ───────────────────────────────────────────────────────────────────

$("#sharing").addEventListener("toggle", (event) => {
  if (event.target.open && current) loadShares().catch(showError);
});

async function loadShares() {
  const room = current;
  const { shares } = await api("GET", `/chatroom/${room.id}/shares`);
  if (room === current) $("#shares").replaceChildren(...shares.map(shareItem));
}

const absolute = (url) => new URL(url, location.href).href;

function shareItem(share) {
  const link = document.createElement("a");
  link.href = share.url;
  link.target = "_blank";
  link.rel = "noopener";
  link.textContent = absolute(share.url);
  const about = document.createElement("small");
  about.textContent = `${share.messageCount} messages · ${new Date(share.createdAt).toLocaleString()}`;
  const revoke = document.createElement("button");
  revoke.type = "button";
  revoke.textContent = "Revoke";
  on(revoke, "click", async () => {
    await api("DELETE", `/chatroom/${current.id}/share/${share.id}`);
    await loadShares();
    showStatus("Link revoked: it no longer opens.");
  });
  const item = document.createElement("li");
  item.append(link, about, revoke);
  return item;
}

on($("#create-share"), "click", async () => {
  const { share } = await api("POST", `/chatroom/${current.id}/share`);
  const url = absolute(share.url);
  const copied = await navigator.clipboard?.writeText(url).then(
    () => true,
    () => false,
  );
  showStatus(copied ? `Link copied: ${url}` : `Link created: ${url}`);
  await loadShares();
});

// ── Your data: usage, export, account deletion ──────────────────────────────────────────────────

$("#your-data").addEventListener("toggle", (event) => {
  if (event.target.open) loadUsage().catch(showError);
});

async function loadUsage() {
  const { days, totals } = await api("GET", "/user/usage?days=30");
  drawUsageChart($("#usage-chart"), days);
  const tokens = totals.promptTokens + totals.outputTokens;
  $("#usage-summary").textContent = `${totals.prompts} prompts and ${tokens} tokens in the last 30 days (UTC).`;
}

on($("#export"), "click", async () => {
  const response = await download("/user/export");
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = attachmentName(response.headers.get("Content-Disposition"), "gemini-backend-export.json");
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  showStatus(`Exported: ${link.download}`);
});

on($("#delete-account-form"), "submit", async (event) => {
  const { password } = fields(event.target);
  if (!confirm("Delete your account, every chatroom and every message? There is no undo.")) return;
  await api("POST", "/user/delete-account", { password });
  event.target.reset();
  signOutLocally();
  showStatus("Your account was deleted.");
});

// ── Start ───────────────────────────────────────────────────────────────────────────────────────

if (session.token) enter().catch(showError);
else $("#signed-out").hidden = false;
