// Part of `npm run e2e`: live streams under churn against `wrangler dev` itself. Clients drop SSE streams
// and WebSockets mid-reply while prompts are cut, retried and cancelled, and tokens are revoked under open
// streams. Then: every stream of a revoked token got `revoked`, a deleted chatroom's WebSocket closed at
// once, every prompt settled, the server still answers, and it logged no uncaught error.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function client(baseUrl) {
  return async (method, path, { token, body } = {}) => {
    const headers = {};
    if (body) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: response.status, body: json };
  };
}

/** An SSE stream whose event names are kept; cut (aborted) after `cutAfterMs`, or read until it ends. */
function sse(url, headers, cutAfterMs = 30_000) {
  const controller = new AbortController();
  const events = [];
  const timer = setTimeout(() => controller.abort(), cutAfterMs);
  /** Settles once the server has answered (its status is in), or the request failed. */
  let answered;
  const opened = new Promise((resolve) => {
    answered = resolve;
  });
  const done = (async () => {
    try {
      const response = await fetch(url, {
        headers: { Accept: "text/event-stream", ...headers },
        signal: controller.signal,
      });
      answered();
      if (response.status !== 200) {
        events.push(`status ${response.status}`);
        await response.body?.cancel();
        return;
      }
      const decoder = new TextDecoder();
      let buffer = "";
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let cut = buffer.indexOf("\n\n"); cut >= 0; cut = buffer.indexOf("\n\n")) {
          const name = /^event: (.+)$/m.exec(buffer.slice(0, cut))?.[1];
          if (name) events.push(name);
          buffer = buffer.slice(cut + 2);
        }
      }
      events.push("end");
    } catch {
      events.push("cut");
    } finally {
      answered();
      clearTimeout(timer);
    }
  })();
  return { events, done, opened };
}

/** A WebSocket on the chatroom's events (opened with a ticket, as a browser does). */
function socket(url) {
  const ws = new WebSocket(url);
  const messages = [];
  const state = { opened: false, closedAt: 0, code: 0 };
  ws.addEventListener("open", () => {
    state.opened = true;
  });
  ws.addEventListener("message", (event) => messages.push(String(event.data)));
  ws.addEventListener("close", (event) => {
    state.closedAt = Date.now();
    state.code = event.code;
  });
  ws.addEventListener("error", () => {});
  const opened = new Promise((resolve) => {
    ws.addEventListener("open", resolve);
    ws.addEventListener("close", resolve);
    setTimeout(resolve, 5_000);
  });
  return { ws, messages, state, opened };
}

async function waitFor(check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return false;
}

export async function streamChurn(stack, { rounds = 4 } = {}) {
  const base = stack.baseUrl;
  const wsBase = base.replace(/^http/, "ws");
  const call = client(base);
  const results = [];
  const check = (name, passed, detail = "") => {
    results.push(passed);
    console.log(`e2e: ${passed ? "ok" : "FAILED"} ${name}${detail ? ` (${detail})` : ""}`);
  };

  /** A new user (Basic: 5 prompts a day, so one per round) with two tokens and a chatroom. */
  const newUser = async () => {
    const phoneNumber = `+919${String(Math.floor(Math.random() * 1e9)).padStart(9, "0")}`;
    const password = "s3cretPass";
    await call("POST", "/api/auth/signup", { body: { phoneNumber, password } });
    const { otp } = (await call("POST", "/api/auth/send-otp", { body: { phoneNumber } })).body;
    const sender = (await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp } })).body.authToken;
    const revokable = (await call("POST", "/api/auth/login", { body: { phoneNumber, password } })).body.authToken;
    const room = (await call("POST", "/api/chatroom", { token: sender, body: { name: "Churn" } })).body.chatroom.id;
    return { phoneNumber, password, sender, revokable, room };
  };

  const prompts = [];
  const dropped = [];
  for (let round = 0; round < rounds; round++) {
    const { password, sender, revokable, room } = await newUser();
    const ticketOf = async (token) =>
      (await call("POST", `/api/chatroom/${room}/stream-ticket`, { token })).body.ticket;
    // Streams of the token revoked at the end of the round, left open until then.
    const held = [
      sse(`${base}/api/chatroom/${room}/events`, { Authorization: `Bearer ${revokable}` }),
      sse(`${base}/api/chatroom/${room}/events?ticket=${await ticketOf(revokable)}`, {}),
    ];
    const sent = [];
    for (const text of [`[slow] churn ${round}`, `[drop] churn ${round}`, `[slow] churn ${round}, again`]) {
      const answer = await call("POST", `/api/chatroom/${room}/message`, {
        token: sender,
        body: { userMessage: text },
      });
      const id = answer.body?.prompt?.id;
      if (answer.status !== 202) throw new Error(`churn: a send answered ${answer.status}`);
      sent.push(id);
      prompts.push({ room, id, token: sender });
      // Per-prompt streams dropped at a random moment while their deltas flow.
      dropped.push(
        sse(
          `${base}/api/chatroom/${room}/message/${id}/stream`,
          { Authorization: `Bearer ${sender}` },
          100 + Math.random() * 1_500,
        ),
      );
    }
    // Chatroom streams dropped while the three replies are written (the cut that used to log "Uncaught").
    for (let i = 0; i < 5; i++) {
      dropped.push(
        sse(`${base}/api/chatroom/${room}/events`, { Authorization: `Bearer ${sender}` }, 300 + Math.random() * 2_500),
      );
    }
    const ws = socket(`${wsBase}/api/chatroom/${room}/events?ticket=${await ticketOf(sender)}`);
    await ws.opened;
    await sleep(300 + Math.random() * 700);
    ws.ws.close();
    // A reply stopped mid-stream, then retried: its streams are told, and the retry runs again.
    await call("POST", `/api/chatroom/${room}/message/${sent[0]}/cancel`, { token: sender });
    await call("POST", `/api/chatroom/${room}/message/${sent[0]}/retry`, { token: sender });
    // The retried reply is being written slowly: a per-prompt stream of it is open at the revocation.
    held.push(sse(`${base}/api/chatroom/${room}/message/${sent[0]}/stream`, { Authorization: `Bearer ${revokable}` }));
    // Revoked only once every held stream is open (on a busy machine a stream can take longer than a
    // moment to be answered, and one answered after the revocation is a 401, not a revoked stream).
    await Promise.race([Promise.all(held.map((s) => s.opened)), sleep(10_000)]);
    await sleep(200);
    // The revokable token is revoked under its open streams: a password change or a logout.
    const how = round % 2 === 0 ? "logout" : "a password change";
    const revokedAt = Date.now();
    if (round % 2 === 0) await call("POST", "/api/auth/logout", { token: revokable });
    else {
      const changed = await call("POST", "/api/auth/change-password", {
        token: revokable,
        body: { currentPassword: password, newPassword: "an0therPass9" },
      });
      // Every other token of the user went with it: the rest of the round uses the new one.
      for (const prompt of prompts) if (prompt.token === sender) prompt.token = changed.body.authToken;
    }
    const ended = await Promise.race([Promise.all(held.map((s) => s.done)).then(() => true), sleep(15_000)]);
    const revoked = held.filter((s) => s.events.at(-2) === "revoked" && s.events.at(-1) === "end").length;
    check(
      `round ${round + 1}: ${how} ends every open stream of the token with revoked`,
      ended === true && revoked === held.length,
      `${revoked} of ${held.length} in ${Date.now() - revokedAt} ms${revoked === held.length ? "" : `; last events: ${held.map((s) => s.events.slice(-2).join(" > ")).join(", ")}`}`,
    );
  }
  await Promise.all(dropped.map((s) => s.done));

  // Keepalive and close over a real WebSocket: ping gets pong, and a deleted chatroom closes it at once.
  const { sender, room: doomed } = await newUser();
  const ticket = (await call("POST", `/api/chatroom/${doomed}/stream-ticket`, { token: sender })).body.ticket;
  const ws = socket(`${wsBase}/api/chatroom/${doomed}/events?ticket=${ticket}`);
  await ws.opened;
  ws.ws.send("ping");
  const pong = await waitFor(() => ws.messages.includes("pong"), 2_000);
  check("a WebSocket's ping gets pong", pong);
  const deletedAt = Date.now();
  await call("DELETE", `/api/chatroom/${doomed}`, { token: sender });
  await waitFor(() => ws.state.closedAt > 0, 5_000);
  const closeMs = ws.state.closedAt ? ws.state.closedAt - deletedAt : Number.POSITIVE_INFINITY;
  check(
    "a deleted chatroom's WebSocket gets deleted and is closed at once",
    closeMs < 2_000 && ws.messages.some((m) => m.includes('"deleted"')),
    `closed after ${closeMs} ms`,
  );

  const settled = await waitFor(async () => {
    for (const { room, id, token } of prompts) {
      const res = await call("GET", `/api/chatroom/${room}/message/${id}`, { token });
      if (res.body?.prompt?.status === "pending") return false;
    }
    return true;
    // A cut Gemini stream is retried after 5 s and then 25 s of back-off; a busy machine adds to that.
  }, 120_000);
  check(
    "every prompt of the churn settled",
    settled,
    `${prompts.length} prompts, ${dropped.length} streams dropped mid-reply`,
  );
  const healthy = (await Promise.all(Array.from({ length: 20 }, () => fetch(`${base}/`).then((r) => r.status)))).filter(
    (status) => status === 200,
  ).length;
  check("wrangler dev still serving after the churn", healthy === 20, `${healthy} of 20 answered 200`);
  const uncaught = stack.output().match(/Uncaught/g)?.length ?? 0;
  check("no uncaught error logged", uncaught === 0, `${uncaught} "Uncaught" lines`);
  return results;
}

// `node tools/e2e-churn.mjs`: the churn alone, against a stack of its own.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { randomBytes } = await import("node:crypto");
  const { startLocalStack } = await import("./local-stack.mjs");
  const persistTo = mkdtempSync(join(tmpdir(), "gemini-backend-churn-"));
  const stack = await startLocalStack({
    persistTo,
    quiet: true,
    extraVars: { JWT_SECRET: randomBytes(32).toString("hex") },
  });
  let results = [false];
  try {
    results = await streamChurn(stack);
  } finally {
    if (process.env.CHURN_LOG) (await import("node:fs")).writeFileSync(process.env.CHURN_LOG, stack.output());
    await stack.stop();
    rmSync(persistTo, { recursive: true, force: true });
  }
  process.exit(results.includes(false) ? 1 : 0);
}
