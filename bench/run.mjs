// npm run bench — measures the built Worker the way its users feel it and prints the tables
// (`-- --write` also writes them to bench/results.md and the table in docs/benchmarks.md).
//
// The Worker is served by Miniflare directly: the `wrangler dev` proxy tops out near 1 000 requests/s on
// a small machine and would measure itself. All traffic goes to 127.0.0.1. Figures are medians of
// several runs, each compared with a trivial Worker measured in the same run.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import autocannon from "autocannon";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { freePort } from "../tools/local-stack.mjs";
import { startGeminiStub } from "../tools/stubs/gemini.mjs";
import { signStripePayload } from "../tools/stubs/stripe-signature.mjs";
import { inspect } from "./inspector.mjs";

const BUILD = "bench/.build";
const RUNS = 3;
const LOAD_SECONDS = 3;
const CONNECTIONS = 32;
const BUDGET_GZIP_KIB = 250;
const COMPAT_DATE = /compatibility_date\s*=\s*"([^"]+)"/.exec(readFileSync("wrangler.toml", "utf8"))?.[1];
const WEBHOOK_SECRET = "whsec_bench";
/** `npm run bench -- --write` also writes bench/results.md, bench/results.json and the table in docs/benchmarks.md. */
const RESULTS_PAGE = "docs/benchmarks.md";
const WRITE = process.argv.includes("--write");
/**
 * `npm run bench -- --only=floor` (or `=startup`, `=cold`, `=soak`, `=tree`, `=search`) measures that alone and
 * prints it, writing nothing; `--only=profile` prints where the hot reads' CPU goes beside their floor's.
 */
const ONLY = process.argv.find((arg) => arg.startsWith("--only="))?.slice("--only=".length);
const startedAt = Date.now();

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
const log = (message) => console.log(`[bench ${((Date.now() - startedAt) / 1000).toFixed(0)}s] ${message}`);

/** Runs wrangler quietly (no prompts, no metrics); a failure throws with its output. */
function wrangler(args) {
  const result = spawnSync("wrangler", args, {
    encoding: "utf8",
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" },
  });
  if (result.status !== 0) throw new Error(`wrangler ${args.slice(0, 2).join(" ")} failed:\n${result.stderr}`);
}

function build(outdir, entry) {
  wrangler(["deploy", "--dry-run", "--outdir", outdir, ...(entry ? [entry] : [])]);
  // wrangler names the output after the entry's file name.
  return `${outdir}/${entry ? entry.split("/").pop().replace(/\.ts$/, ".js") : "index.js"}`;
}

/** CPU time (ns) the workerd processes started by this script have used so far, from /proc. */
function workerdPids() {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "workerd";
      } catch {
        return false;
      }
    });
}
/** Whether `pid` is a descendant of this process. */
function descendsFromUs(pid) {
  let current = String(pid);
  for (let depth = 0; depth < 8; depth++) {
    let stat;
    try {
      stat = readFileSync(`/proc/${current}/stat`, "utf8");
    } catch {
      return false;
    }
    // "pid (comm) state ppid …": comm may hold spaces, so read after its closing parenthesis.
    const parent = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1];
    if (Number(parent) === process.pid) return true;
    if (!parent || Number(parent) <= 1) return false;
    current = parent;
  }
  return false;
}
function cpuNanoseconds(pids) {
  let total = 0;
  for (const pid of pids) {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      total += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
    }
  }
  return total;
}

async function serve(options) {
  const before = new Set(workerdPids());
  const port = await freePort();
  // Miniflare 5 takes its v4-style options through its own converter.
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port,
      modules: true,
      compatibilityDate: COMPAT_DATE,
      // The Worker's own log lines (one per request) would bury the bench's output.
      handleStructuredLogs: () => {},
      ...options,
    }),
  );
  const url = await mf.ready;
  const started = workerdPids().filter((pid) => !before.has(pid));
  // Another run on this machine may start a workerd at the same moment: keep this process's own.
  const ours = started.filter(descendsFromUs);
  const pids = ours.length ? ours : started;
  return { mf, url: url.href.replace(/\/$/, ""), pids };
}

/** The consumer settings of wrangler.toml's `gemini-prompts` consumer. */
const CONSUMER = { maxBatchSize: 10, maxBatchTimeout: 0, maxRetries: 2 };

function serveWorker(scriptPath, { geminiUrl, consume, consumer = CONSUMER, bindings = {}, persistTo, inspectorPort }) {
  return serve({
    scriptPath,
    // The isolates' V8 inspector (bench: the Worker's heap during an export).
    ...(inspectorPort ? { inspectorPort } : {}),
    // D1, KV and Durable Object data on disk, kept for the next Worker started with the same path.
    ...(persistTo ? { resourcePersistencePath: persistTo } : {}),
    compatibilityFlags: ["enable_request_signal"],
    d1Databases: ["DB"],
    kvNamespaces: ["CACHE"],
    durableObjects: { CHATROOM_HUB: { className: "ChatroomHub", useSQLite: true } },
    queueProducers: { PROMPT_QUEUE: { queueName: "gemini-prompts" } },
    ...(consume ? { queueConsumers: { "gemini-prompts": consumer } } : {}),
    bindings: {
      LIVE_HEARTBEAT_SECONDS: "15",
      OTP_DELIVERY: "response",
      OTP_WEBHOOK_URL: "",
      PUBLIC_BASE_URL: "http://127.0.0.1",
      CORS_ORIGINS: "*",
      JWT_TTL_SECONDS: "86400",
      JWT_SECRET: randomBytes(32).toString("hex"),
      GEMINI_MODEL: "gemini-2.5-flash",
      GEMINI_API_KEY: "bench-key",
      GEMINI_BASE_URL: geminiUrl,
      STRIPE_API_BASE: "",
      STRIPE_SECRET_KEY: "",
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_PRO_PLAN_PRICE_ID: "",
      ...bindings,
    },
  });
}

async function migrate(mf) {
  const db = await mf.getD1Database("DB");
  for (const file of readdirSync("migrations")
    .filter((name) => name.endsWith(".sql"))
    .sort()) {
    for (const statement of readFileSync(`migrations/${file}`, "utf8").split("--> statement-breakpoint")) {
      if (statement.trim()) await db.prepare(statement).run();
    }
  }
  return db;
}

/** A small API client for one served Worker. */
function client(base) {
  const request = async (method, path, { body, token, headers = {} } = {}) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
  };
  let phones = 0;
  const phone = () => `+9199${String(process.pid % 1000).padStart(3, "0")}${String(++phones).padStart(5, "0")}`;
  return {
    request,
    phone,
    async signup() {
      const phoneNumber = phone();
      await request("POST", "/api/auth/signup", { body: { phoneNumber, password: "s3cretPass" } });
      return phoneNumber;
    },
    async otpFor(phoneNumber) {
      return (await request("POST", "/api/auth/send-otp", { body: { phoneNumber } })).body.otp;
    },
    async user() {
      const phoneNumber = await this.signup();
      const otp = await this.otpFor(phoneNumber);
      const verified = await request("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp } });
      return { phoneNumber, token: verified.body.authToken, id: verified.body.user.id };
    },
    /** Turns the user Pro the way Stripe would: a signed subscription event. */
    async makePro(userId) {
      const { payload, header } = await proEvent(userId);
      await request("POST", "/api/billing/webhook/stripe", { body: payload, headers: { "Stripe-Signature": header } });
    },
    async withRoom(user, name) {
      const room = await request("POST", "/api/chatroom", { token: user.token, body: { name } });
      return { ...user, roomId: room.body.chatroom.id };
    },
    /** A Basic user with a room, and a Pro user with a room (prompts come from Pro: no daily limit). */
    async fixtures() {
      const basic = await this.withRoom(await this.user(), "Bench");
      const pro = await this.user();
      await this.makePro(pro.id);
      return { basic, pro: await this.withRoom(pro, "Bench") };
    },
  };
}

async function signedEvent(type, object) {
  const event = {
    id: `evt_bench_${randomBytes(8).toString("hex")}`,
    object: "event",
    created: Math.floor(Date.now() / 1000),
    type,
    data: { object },
  };
  const payload = JSON.stringify(event);
  const { header } = await signStripePayload(payload, WEBHOOK_SECRET);
  return { payload, header };
}

const proEvent = (userId) =>
  signedEvent("customer.subscription.updated", {
    id: `sub_${userId.slice(0, 8)}`,
    customer: `cus_${userId.slice(0, 8)}`,
    status: "active",
    cancel_at_period_end: false,
    items: { data: [{ current_period_end: Math.floor(Date.now() / 1000) + 30 * 86_400 }] },
    metadata: { userId },
  });

/**
 * A UUIDv7 for `ms` (as the Worker's ids: ordering by id is ordering by creation time), with random bits
 * after the timestamp.
 */
function uuidv7(ms) {
  const hex = ms.toString(16).padStart(12, "0") + randomBytes(10).toString("hex");
  const variant = ((Number.parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * The consumer's part of a prompt's answer, written straight to D1 (the bench's Workers consume nothing):
 * a completed reply for the prompt's current run, the prompt completed, and the reply the active leaf.
 */
async function storeReply(db, promptId) {
  const now = Date.now();
  const replyId = uuidv7(now);
  await db.batch([
    db
      .prepare(
        `INSERT INTO messages (id, chatroom_id, user_id, role, content, status, reply_to, parent_id, incarnation, model, prompt_tokens, completion_tokens, created_at, updated_at)
         SELECT ?1, chatroom_id, user_id, 'assistant', 'A benchmark reply.', 'completed', id, id, incarnation, 'gemini-2.5-flash', 12, 5, ?2, ?2
         FROM messages WHERE id = ?3`,
      )
      .bind(replyId, now, promptId),
    db.prepare("UPDATE messages SET status = 'completed', updated_at = ?1 WHERE id = ?2").bind(now, promptId),
    db
      .prepare(
        "UPDATE chatrooms SET active_leaf_id = ?1, updated_at = ?2, last_message_at = ?2 WHERE active_leaf_id = ?3",
      )
      .bind(replyId, now, promptId),
  ]);
}

/**
 * Each endpoint: how to prepare one call (untimed) and make it (timed). `db` is the Worker's D1, for
 * what the prepare step writes directly (a reply the consumer would have stored).
 */
function endpoints(api, { basic, pro }, db) {
  const { token, roomId } = basic;
  // Edits and regenerations get a chatroom of their own, so the send and the page read above keep theirs.
  let branchRoom;
  const sendInBranchRoom = async (userMessage) => {
    branchRoom ??= (await api.withRoom(pro, `Branches ${randomBytes(4).toString("hex")}`)).roomId;
    const sent = await api.request("POST", `/api/chatroom/${branchRoom}/message`, {
      token: pro.token,
      body: { userMessage },
    });
    if (sent.status !== 202) throw new Error(`send before an edit or regeneration answered ${sent.status}`);
    return sent.body.prompt.id;
  };
  return [
    {
      name: "POST /api/auth/signup",
      calls: 8,
      prepare: async () => api.phone(),
      call: (phoneNumber) => api.request("POST", "/api/auth/signup", { body: { phoneNumber, password: "s3cretPass" } }),
    },
    {
      name: "POST /api/auth/verify-otp",
      calls: 20,
      prepare: async () => {
        const phoneNumber = await api.signup();
        return { phoneNumber, otp: await api.otpFor(phoneNumber) };
      },
      call: (body) => api.request("POST", "/api/auth/verify-otp", { body }),
    },
    {
      name: "POST /api/auth/login",
      calls: 8,
      call: () =>
        api.request("POST", "/api/auth/login", { body: { phoneNumber: basic.phoneNumber, password: "s3cretPass" } }),
    },
    { name: "GET /api/user/me", calls: 60, call: () => api.request("GET", "/api/user/me", { token }) },
    { name: "GET /api/chatroom (cached)", calls: 60, call: () => api.request("GET", "/api/chatroom", { token }) },
    {
      name: "GET /api/chatroom (uncached)",
      calls: 30,
      prepare: async () =>
        api.request("POST", "/api/chatroom", { token, body: { name: `Room ${randomBytes(4).toString("hex")}` } }),
      call: () => api.request("GET", "/api/chatroom", { token }),
    },
    { name: "GET /api/chatroom/:id", calls: 60, call: () => api.request("GET", `/api/chatroom/${roomId}`, { token }) },
    {
      name: "POST /api/chatroom/:id/message",
      calls: 40,
      call: () =>
        api.request("POST", `/api/chatroom/${pro.roomId}/message`, {
          token: pro.token,
          body: { userMessage: "Benchmark prompt" },
        }),
    },
    {
      // The prompt just sent is edited (a new version of it, queued like a send).
      name: "POST /api/chatroom/:id/message/:messageId/edit",
      calls: 40,
      prepare: () => sendInBranchRoom("Benchmark prompt with a typo"),
      call: (promptId) =>
        api.request("POST", `/api/chatroom/${branchRoom}/message/${promptId}/edit`, {
          token: pro.token,
          body: { userMessage: "Benchmark prompt, edited" },
        }),
    },
    {
      // The prompt just sent and answered gets a new reply version.
      name: "POST /api/chatroom/:id/message/:messageId/regenerate",
      calls: 40,
      prepare: async () => {
        const promptId = await sendInBranchRoom("Benchmark prompt to regenerate");
        await storeReply(db, promptId);
        return promptId;
      },
      call: (promptId) =>
        api.request("POST", `/api/chatroom/${branchRoom}/message/${promptId}/regenerate`, { token: pro.token }),
    },
    {
      name: "GET /api/chatroom/:id/messages",
      calls: 40,
      call: () => api.request("GET", `/api/chatroom/${pro.roomId}/messages?limit=20`, { token: pro.token }),
    },
    {
      name: "GET /api/billing/subscription/status",
      calls: 40,
      call: () => api.request("GET", "/api/billing/subscription/status", { token }),
    },
    { name: "GET /openapi.json", calls: 20, call: () => api.request("GET", "/openapi.json") },
    {
      name: "POST /api/billing/webhook/stripe",
      calls: 40,
      prepare: async () => proEvent(pro.id),
      call: ({ payload, header }) =>
        api.request("POST", "/api/billing/webhook/stripe", { body: payload, headers: { "Stripe-Signature": header } }),
    },
  ];
}

/** Median CPU ms per call of `endpoint` over RUNS runs, from the workerd process's own CPU time. */
async function cpuPerCall(server, endpoint) {
  const perRun = [];
  for (let run = 0; run < RUNS; run++) {
    let cpu = 0;
    for (let i = 0; i < endpoint.calls; i++) {
      // Prepared right before its call and outside the timing: the uncached list read must follow the
      // change that invalidated it, not a read that cached it again.
      const input = endpoint.prepare ? await endpoint.prepare() : undefined;
      const start = cpuNanoseconds(server.pids);
      const response = await endpoint.call(input);
      cpu += cpuNanoseconds(server.pids) - start;
      if (response.status >= 400)
        throw new Error(`${endpoint.name} answered ${response.status}: ${JSON.stringify(response.body)}`);
    }
    perRun.push(cpu / endpoint.calls / 1e6);
  }
  return median(perRun);
}

/** One load run; any non-2xx answer or error fails the bench. */
async function loadRun(url, headers) {
  const result = await autocannon({ url, connections: CONNECTIONS, duration: LOAD_SECONDS, headers });
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`load on ${url}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return result;
}

async function load(url, headers) {
  const runs = [];
  for (let run = 0; run < RUNS; run++) runs.push(await loadRun(url, headers));
  return {
    rps: median(runs.map((r) => r.requests.average)),
    p50: median(runs.map((r) => r.latency.p50)),
    p99: median(runs.map((r) => r.latency.p99)),
  };
}

/** 10 Pro users with a chatroom each, on a fresh Worker. */
async function drainFixtures(server) {
  const db = await migrate(server.mf);
  const api = client(server.url);
  const users = [];
  for (let i = 0; i < 10; i++) {
    const user = await api.user();
    await api.makePro(user.id);
    users.push(await api.withRoom(user, "Drain"));
  }
  const send = async () => {
    const sends = users.flatMap((user) =>
      Array.from({ length: 10 }, (_, i) =>
        api.request("POST", `/api/chatroom/${user.roomId}/message`, {
          token: user.token,
          body: { userMessage: `drain ${i}` },
        }),
      ),
    );
    const answers = await Promise.all(sends);
    if (answers.some((r) => r.status !== 202)) throw new Error("not every drain prompt was accepted");
    return answers.map((r) => r.body.prompt.id);
  };
  const allReplied = async (started) => {
    for (;;) {
      const row = await db
        .prepare("SELECT count(*) AS n FROM messages WHERE role = 'assistant' AND status = 'completed'")
        .first();
      if (row.n >= 100) return (Date.now() - started) / 1000;
      if (Date.now() - started > 60_000) throw new Error(`only ${row.n} of 100 replies after 60 s`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };
  return { send, allReplied };
}

/**
 * Two figures for 100 prompts, Gemini answering after 500 ms:
 * - `local`: the local Queues broker delivers to the consumer (it dispatches one batch of 10 at a time);
 * - `concurrent`: the same 10 batches handed to the Worker's real queue() handler at once, as Cloudflare
 *   Queues runs consumer invocations concurrently.
 */
async function queueDrain(scriptPath) {
  const gemini = await startGeminiStub({ delayMs: 500 });
  const local = [];
  const concurrent = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      const broker = await serveWorker(scriptPath, { geminiUrl: gemini.url, consume: true });
      try {
        const fixtures = await drainFixtures(broker);
        const started = Date.now();
        await fixtures.send();
        local.push(await fixtures.allReplied(started));
      } finally {
        await broker.mf.dispose();
      }
      const direct = await serveWorker(scriptPath, { geminiUrl: gemini.url, consume: false });
      try {
        const fixtures = await drainFixtures(direct);
        const worker = await direct.mf.getWorker();
        const started = Date.now();
        const ids = await fixtures.send();
        const batches = Array.from({ length: 10 }, (_, b) =>
          ids
            .slice(b * 10, b * 10 + 10)
            .map((promptId) => ({ id: promptId, timestamp: new Date(), attempts: 1, body: { promptId } })),
        );
        await Promise.all(batches.map((messages) => worker.queue("gemini-prompts", messages)));
        concurrent.push(await fixtures.allReplied(started));
      } finally {
        await direct.mf.dispose();
      }
    }
  } finally {
    await gemini.close();
  }
  return { local: median(local), concurrent: median(concurrent) };
}

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
};

/**
 * Reads a text/event-stream response, calling `onEvent({ id, event, data, at })` as each event arrives
 * (`at`: Date.now() when its last line was read). Resolves when the stream ends or `stop()` is called.
 */
function readSse(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let stopped = false;
  const done = (async () => {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (stopped) return;
        throw error;
      }
      if (chunk.done) return;
      const at = Date.now();
      buffer += decoder.decode(chunk.value, { stream: true });
      for (let end = buffer.indexOf("\n\n"); end !== -1; end = buffer.indexOf("\n\n")) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = Object.fromEntries(
          block
            .split("\n")
            .filter((line) => line && !line.startsWith(":"))
            .map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 1).trimStart()]),
        );
        if (fields.event) onEvent({ id: fields.id, event: fields.event, data: JSON.parse(fields.data), at });
      }
    }
  })();
  return {
    done,
    stop() {
      stopped = true;
      return reader.cancel().catch(() => {});
    },
  };
}

/** A Pro user with a chatroom on `server` (a migrated, consuming Worker). */
async function proRoom(server) {
  const api = client(server.url);
  const user = await api.user();
  await api.makePro(user.id);
  return { api, user: await api.withRoom(user, "Live") };
}

/**
 * Sends `count` prompts one after another with `Accept: text/event-stream` and times, for each, the
 * first `delta` and the `reply` (sent once the reply is stored) against the Gemini stub's own first-
 * and last-chunk times: the difference is our path (queue hop, consumer, hub, Worker stream).
 */
async function timeLiveReplies(server, gemini, count) {
  const { user } = await proRoom(server);
  const samples = [];
  for (let i = 0; i < count + 2; i++) {
    const userMessage = `live ${i} ${randomBytes(4).toString("hex")}`;
    const sentAt = Date.now();
    const response = await fetch(`${server.url}/api/chatroom/${user.roomId}/message`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${user.token}`,
        "Content-Type": "application/json",
        Accept: "text/event-stream",
      },
      body: JSON.stringify({ userMessage }),
    });
    if (response.status !== 200) throw new Error(`streamed send answered ${response.status}`);
    let firstDeltaAt;
    let replyAt;
    let reply;
    await readSse(response, ({ event, data, at }) => {
      if (event === "delta") firstDeltaAt ??= at;
      if (event === "reply") {
        replyAt = at;
        reply = data.prompt;
      }
    }).done;
    if (reply?.status !== "completed") throw new Error(`live prompt ended ${reply?.status}`);
    const timing = gemini.timings.findLast((t) => t.lastUserText === userMessage);
    // The first two prompts warm the isolate, the hub and the SQLite files up; they are not counted.
    if (i >= 2)
      samples.push({
        firstDelta: firstDeltaAt - sentAt,
        firstDeltaOverhead: firstDeltaAt - timing.firstChunkAt,
        stored: replyAt - sentAt,
        storedOverhead: replyAt - timing.lastChunkAt,
      });
  }
  const summary = (key) => ({
    p50: percentile(
      samples.map((s) => s[key]),
      50,
    ),
    p95: percentile(
      samples.map((s) => s[key]),
      95,
    ),
  });
  return {
    count: samples.length,
    firstDelta: summary("firstDelta"),
    firstDeltaOverhead: summary("firstDeltaOverhead"),
    stored: summary("stored"),
    storedOverhead: summary("storedOverhead"),
  };
}

/**
 * `subscribers` clients on the chatroom's `/events` while `prompts` prompts are answered. Every
 * subscriber must see every event of the sender's view in the same order; each prompt's deltas, joined,
 * must be its stored reply. Latency: each first delta's arrival after the stub wrote its first chunk.
 */
async function fanOut(server, gemini, subscribers, prompts) {
  const { api, user } = await proRoom(server);
  const streams = await Promise.all(
    Array.from({ length: subscribers }, async () => {
      const response = await fetch(`${server.url}/api/chatroom/${user.roomId}/events`, {
        headers: { Authorization: `Bearer ${user.token}`, Accept: "text/event-stream" },
      });
      if (response.status !== 200) throw new Error(`events answered ${response.status}`);
      const events = [];
      return { events, reading: readSse(response, (event) => events.push(event)) };
    }),
  );
  const replied = (stream, promptId) => stream.events.some((e) => e.event === "reply" && e.data.prompt.id === promptId);
  const until = async (condition, what) => {
    const deadline = Date.now() + 30_000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`fan-out: no ${what} within 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  const sent = [];
  for (let i = 0; i < prompts; i++) {
    const userMessage = `fan-out ${i} ${randomBytes(4).toString("hex")}`;
    const answer = await api.request("POST", `/api/chatroom/${user.roomId}/message`, {
      token: user.token,
      body: { userMessage },
    });
    if (answer.status !== 202) throw new Error(`send answered ${answer.status}`);
    const { id } = answer.body.prompt;
    sent.push({ id, userMessage });
    await until(() => replied(streams[0], id), "reply");
  }
  // Give the slowest subscriber time to read the last reply; one that never does counts as losing it.
  const last = sent.at(-1).id;
  await until(() => streams.every((s) => replied(s, last)), "reply on every subscriber").catch(() => {});
  await Promise.all(streams.map((s) => s.reading.stop()));

  let lost = 0;
  let reordered = 0;
  let wrongText = 0;
  const reference = streams[0].events.map((e) => e.id);
  const firstDeltaLatencies = [];
  for (const stream of streams) {
    const ids = stream.events.map((e) => e.id);
    lost += reference.filter((id) => !ids.includes(id)).length;
    reordered += ids.filter((id, i) => i > 0 && id <= ids[i - 1]).length;
    for (const { id, userMessage } of sent) {
      const deltas = stream.events.filter((e) => e.event === "delta" && e.data.promptId === id);
      const reply = stream.events.find((e) => e.event === "reply" && e.data.prompt.id === id);
      if (!reply || deltas.map((e) => e.data.text).join("") !== reply.data.prompt.reply?.content) wrongText++;
      const timing = gemini.timings.findLast((t) => t.lastUserText === userMessage);
      if (deltas[0]) firstDeltaLatencies.push(deltas[0].at - timing.firstChunkAt);
    }
  }
  return {
    subscribers,
    prompts,
    deltas: streams[0].events.filter((e) => e.event === "delta").length,
    lost,
    reordered,
    wrongText,
    p50: percentile(firstDeltaLatencies, 50),
    p95: percentile(firstDeltaLatencies, 95),
  };
}

/** Live replies: first delta and stored reply against the stub's chunks, and fan-out to 50 clients. */
async function liveReplies(scriptPath) {
  const gemini = await startGeminiStub({ chunkGapMs: 40 });
  const withServer = async (consumer, run) => {
    const server = await serveWorker(scriptPath, { geminiUrl: gemini.url, consume: true, consumer });
    try {
      await migrate(server.mf);
      return await run(server);
    } finally {
      await server.mf.dispose();
    }
  };
  try {
    const timed = await withServer(CONSUMER, (server) => timeLiveReplies(server, gemini, 24));
    const batched = await withServer({ ...CONSUMER, maxBatchTimeout: 1 }, (server) =>
      timeLiveReplies(server, gemini, 8),
    );
    const single = await withServer(CONSUMER, (server) => fanOut(server, gemini, 1, 10));
    const fifty = await withServer(CONSUMER, (server) => fanOut(server, gemini, 50, 10));
    return { timed, batched, single, fifty };
  } finally {
    await gemini.close();
  }
}

/**
 * The latency model: what one binding call costs an edge Worker, by kind. Planning figures, not
 * measurements; each with where it comes from.
 */
const LATENCY_SOURCES = [
  {
    kind: "kv.get",
    ms: 5,
    source: "KV hot read at the edge cache, developers.cloudflare.com/kv/concepts/how-kv-works",
  },
  { kind: "kv.put", ms: 30, source: "KV write to the central store, same page" },
  { kind: "kv.delete", ms: 30, source: "as a write" },
  {
    kind: "d1",
    ms: 30,
    source: "D1 query at the primary from a nearby colo, developers.cloudflare.com/d1/best-practices/read-replication",
  },
  { kind: "queue", ms: 10, source: "Queues send, developers.cloudflare.com/queues" },
  { kind: "do", ms: 5, source: "Durable Object call in the same region, developers.cloudflare.com/durable-objects" },
];
const LATENCY_MODEL = Object.fromEntries(LATENCY_SOURCES.map((s) => [s.kind, s.ms]));

/** p50 wall time per endpoint (50 calls each, one at a time) on the instrumented build with the model on. */
async function latencyModel(instrumented) {
  const gemini = await startGeminiStub();
  const server = await serveWorker(instrumented, {
    geminiUrl: gemini.url,
    consume: false,
    bindings: { BENCH_LATENCY: JSON.stringify(LATENCY_MODEL) },
  });
  const figures = new Map();
  try {
    const db = await migrate(server.mf);
    const api = client(server.url);
    const fixtures = await api.fixtures();
    for (const endpoint of endpoints(api, fixtures, db)) {
      const times = [];
      let trips;
      for (let i = 0; i < 50; i++) {
        if (endpoint.name === "GET /api/chatroom (cached)" && i === 0)
          await api.request("GET", "/api/chatroom", { token: fixtures.basic.token });
        const input = endpoint.prepare ? await endpoint.prepare() : undefined;
        const started = performance.now();
        const response = await endpoint.call(input);
        times.push(performance.now() - started);
        if (response.status >= 400) throw new Error(`${endpoint.name} answered ${response.status}`);
        trips = {
          sequentialTrips: Number(response.headers.get("X-Bench-Sequential")),
          totalTrips: Number(response.headers.get("X-Bench-Trips")),
          d1Statements: Number(response.headers.get("X-Bench-D1-Statements")),
        };
      }
      figures.set(endpoint.name, { p50: percentile(times, 50), ...trips });
      log(`  ${endpoint.name}: p50 ${percentile(times, 50).toFixed(0)} ms`);
    }
  } finally {
    await Promise.all([server.mf.dispose(), gemini.close()]);
  }
  return figures;
}

/**
 * A Pro user sends 20 prompts into one chatroom at once; the consumer answers them. Every KV write is
 * logged with its key and time; the figure is the most writes one key took within any one second.
 */
async function kvBurst(instrumented) {
  const gemini = await startGeminiStub({ chunkGapMs: 5 });
  const server = await serveWorker(instrumented, { geminiUrl: gemini.url, consume: true });
  try {
    const db = await migrate(server.mf);
    const api = client(server.url);
    const user = await api.user();
    await api.makePro(user.id);
    const { roomId } = await api.withRoom(user, "Burst");
    await fetch(`${server.url}/__bench/kv-writes?reset`);
    const sends = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        api.request("POST", `/api/chatroom/${roomId}/message`, {
          token: user.token,
          body: { userMessage: `burst ${i}` },
        }),
      ),
    );
    if (sends.some((r) => r.status !== 202)) throw new Error("not every burst prompt was accepted");
    const deadline = Date.now() + 30_000;
    for (;;) {
      const row = await db
        .prepare("SELECT count(*) AS n FROM messages WHERE chatroom_id = ? AND role = 'assistant'")
        .bind(roomId)
        .first();
      if (row.n >= 20) break;
      if (Date.now() > deadline) throw new Error(`only ${row.n} of 20 burst replies after 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const writes = await (await fetch(`${server.url}/__bench/kv-writes`)).json();
    // D1 does not allow PRAGMA page_count: count the stored bytes of the burst's rows instead (text
    // lengths, 8 bytes per number), the prompt with its reply; indexes come on top.
    const stored = await db
      .prepare(
        `SELECT sum(length(id) + length(chatroom_id) + length(user_id) + length(role) + length(content) + length(status)
           + coalesce(length(reply_to), 0) + coalesce(length(quota_day), 0) + 8 * 6) AS bytes
         FROM messages WHERE chatroom_id = ?`,
      )
      .bind(roomId)
      .first();
    const bytesPerPrompt = stored.bytes;
    let max = 0;
    let busiest = "(none)";
    const byKey = Map.groupBy(writes, (w) => w.key);
    for (const [key, list] of byKey) {
      const times = list.map((w) => w.at).sort((a, b) => a - b);
      for (let i = 0, j = 0; i < times.length; i++) {
        while (times[i] - times[j] >= 1_000) j++;
        if (i - j + 1 > max) {
          max = i - j + 1;
          busiest = key.replace(user.id, "<user>");
        }
      }
    }
    return { max, key: busiest, writes: writes.length, bytesPerPrompt: Math.round(bytesPerPrompt / 20) };
  } finally {
    await Promise.all([server.mf.dispose(), gemini.close()]);
  }
}

/**
 * The long chatroom (issue #20: a tree must not make long conversations slow): an active branch of
 * `mainLength` messages, alternating prompt and reply, with `sideBranches` older versions hanging off it.
 */
const TREE = {
  mainLength: 10_000,
  sideBranches: 1_000,
  shortLength: 20,
  pageLimit: 20,
  /** The `before` cursor's distance from the leaf. */
  cursorBack: 5_000,
  /** Timed repetitions of each page read (the four reads interleaved). */
  readReps: 150,
  /** Timed switches between a side branch near the leaf and the main branch (half each way). */
  switchReps: 60,
  /** Timed switches to the main branch this far from the leaf, whose walk down is longer. */
  farSwitchBack: 1_000,
  farSwitchReps: 5,
  /** Timed switches to the first prompt, which walk down the whole branch. */
  rootSwitchReps: 5,
  /** A far switch not answered within this long is reported as such, and the switches after it skipped. */
  farSwitchTimeoutMs: 20_000,
  /** Characters per INSERT while seeding, under D1's 100 KB statement limit. */
  insertChars: 90_000,
};

/** A deterministic pseudo-random generator (mulberry32), so every run seeds the same tree shape. */
function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const TREE_WORDS =
  "the coast weather today tomorrow rain wind sunny cloudy forecast temperature morning evening warm cold".split(" ");
/**
 * Message text of a realistic length. The length depends only on the message's place modulo 20 (a page),
 * so any 20 consecutive messages of a branch carry the same amount of text, in the long chatroom and in
 * the short one alike.
 */
function treeText(role, place) {
  const k = place % 20;
  const length = role === "user" ? 60 + ((k * 37) % 160) : 400 + ((k * 211) % 1_400);
  let text = "";
  for (let i = 0; text.length < length; i++) text += `${TREE_WORDS[(k + i * 7) % TREE_WORDS.length]} `;
  return `${text.slice(0, length - 1)}.`;
}

/**
 * Completed messages straight into D1, as batched multi-row INSERTs (each under D1's statement limit, ten
 * to a batch): the triggers on messages index each for search as the Worker's own writes do. A row is
 * { id, roomId, userId, role, content, parentId, incarnation }; its times come from its id (UUIDv7: the
 * first 48 bits are the millisecond), and a prompt used that day's quota unit.
 */
async function insertMessages(db, rows) {
  const quote = (value) =>
    value === null ? "NULL" : typeof value === "number" ? String(value) : `'${String(value).replaceAll("'", "''")}'`;
  const tuples = rows.map((r) => {
    const reply = r.role === "assistant";
    const ms = Number.parseInt(r.id.replaceAll("-", "").slice(0, 12), 16);
    return `(${[
      r.id,
      r.roomId,
      r.userId,
      r.role,
      r.content,
      "completed",
      r.parentId,
      reply ? r.parentId : null,
      reply ? "gemini-2.5-flash" : null,
      reply ? 40 + (r.content.length % 300) : null,
      reply ? Math.round(r.content.length / 4) : null,
      reply ? null : new Date(ms).toISOString().slice(0, 10),
      r.incarnation ?? 0,
      ms,
      ms,
    ]
      .map(quote)
      .join(", ")})`;
  });
  const insert =
    "INSERT INTO messages (id, chatroom_id, user_id, role, content, status, parent_id, reply_to, model, prompt_tokens, completion_tokens, quota_day, incarnation, created_at, updated_at) VALUES ";
  // Each message's words under its user's search key, as the statement after the Worker's insert adds them
  // (src/features/search/search.terms.ts). The seeded text is ASCII words and punctuation, which
  // search.query.ts splits as this does (its unicode61 rules differ only for marks and a few letters).
  const terms = rows.map((r) => `(${quote(r.id)}, ${quote(searchWords(r.content))})`);
  const index = `INSERT INTO message_terms (rowid, terms, scope)
    SELECT d.rowid, u.search_key || replace(v.column2, ' ', ' ' || u.search_key), 'c' || replace(m.chatroom_id, '-', '')
    FROM (VALUES `;
  const indexEnd = `) v
    JOIN search_docs d ON d.message_id = v.column1 JOIN messages m ON m.id = v.column1 JOIN users u ON u.id = m.user_id
    WHERE v.column2 != ''`;
  const statements = [];
  for (let i = 0; i < tuples.length; ) {
    const from = i;
    let length = insert.length;
    while (i < tuples.length && (i === from || length + tuples[i].length + terms[i].length + 4 <= TREE.insertChars)) {
      length += tuples[i].length + terms[i].length + 4;
      i++;
    }
    statements.push(db.prepare(`${insert}${tuples.slice(from, i).join(", ")}`));
    statements.push(db.prepare(`${index}${terms.slice(from, i).join(", ")}${indexEnd}`));
  }
  for (let i = 0; i < statements.length; i += 10) await db.batch(statements.slice(i, i + 10));
}

/** A seeded message's words, one space apart: its runs of letters and digits. */
const searchWords = (text) => (text.match(/[\p{L}\p{N}]+/gu) ?? []).join(" ");

/**
 * Seeds a chatroom's tree straight into D1 (batched multi-row INSERTs), shaped as the Worker would have
 * left it: the active branch alternates prompt and reply (all completed; a reply's parent_id and reply_to
 * are its prompt); each side branch is an older version of a place on it — an earlier prompt version
 * (with its reply, sometimes one more exchange), or an earlier reply version (sometimes followed by an
 * exchange) — created between its parent and the active branch's message there, so the active branch is
 * the newest child at every step. One side branch is a prompt version 4 messages from the leaf.
 */
async function seedTree(db, { roomId, userId, mainLength, sideBranches, seed }) {
  const random = seededRandom(seed);
  const stepMs = 60_000;
  const base = Date.now() - (mainLength + 10) * stepMs;
  const at = (place) => base + place * stepMs;
  const rows = [];
  const row = ({ id, role, parentId, place, incarnation = 0 }) => {
    rows.push({ id, role, parentId, content: treeText(role, place), incarnation });
    return id;
  };
  // Main branch ids first (their times are fixed), then side branches fill the gaps before each place.
  const main = Array.from({ length: mainLength }, (_, place) => uuidv7(at(place)));
  /** Messages already created in the gap before each place (side branches take the next free millisecond). */
  const used = new Map();
  const nextMs = (place) => {
    const n = (used.get(place) ?? 0) + 1;
    used.set(place, n);
    return at(place) - stepMs + n;
  };
  /** Earlier reply versions of each prompt, in creation order (each its own run: incarnation 0, 1, …). */
  const replyVersions = new Map();
  const sides = [];
  const addSide = (place, kind, more) => {
    const parentId = place === 0 ? null : main[place - 1];
    const ids = [];
    if (kind === "prompt") {
      const prompt = row({ id: uuidv7(nextMs(place)), role: "user", parentId, place });
      ids.push(prompt, row({ id: uuidv7(nextMs(place)), role: "assistant", parentId: prompt, place: place + 1 }));
    } else {
      const versions = replyVersions.get(place) ?? 0;
      replyVersions.set(place, versions + 1);
      ids.push(row({ id: uuidv7(nextMs(place)), role: "assistant", parentId, place, incarnation: versions }));
    }
    for (let i = 0; i < more; i++) {
      const prompt = row({ id: uuidv7(nextMs(place)), role: "user", parentId: ids.at(-1), place: place + ids.length });
      ids.push(prompt);
      ids.push(row({ id: uuidv7(nextMs(place)), role: "assistant", parentId: prompt, place: place + ids.length }));
    }
    sides.push({ place, kind, ids });
  };
  if (sideBranches > 0) addSide(mainLength - 4, "prompt", 0);
  for (let i = 1; i < sideBranches; i++) {
    // Any place but the first prompt: even places are prompts, odd ones replies.
    const place = 1 + Math.floor(random() * (mainLength - 1));
    addSide(place, place % 2 === 0 ? "prompt" : "reply", random() < 0.3 ? 1 : 0);
  }
  for (let place = 0; place < mainLength; place++) {
    row({
      id: main[place],
      role: place % 2 === 0 ? "user" : "assistant",
      parentId: place === 0 ? null : main[place - 1],
      place,
      // A prompt's run, and its reply's, follow its earlier reply versions.
      incarnation: replyVersions.get(place % 2 === 0 ? place + 1 : place) ?? 0,
    });
  }
  await insertMessages(
    db,
    rows.map((r) => ({ ...r, roomId, userId })),
  );
  await db
    .prepare("UPDATE chatrooms SET active_leaf_id = ?1, last_message_at = ?2, updated_at = ?2 WHERE id = ?3")
    .bind(main.at(-1), at(mainLength - 1), roomId)
    .run();
  return { main, sides, messages: rows.length };
}

/**
 * The long chatroom against a short one, on one Worker and one database: the first page of
 * `GET …/messages` and a page `cursorBack` messages back through `before`, each timed `readReps` times
 * (the four reads interleaved, so drift hits all alike; medians); then `PUT …/active-branch` between a
 * side branch near the leaf and the main branch, then to the main branch 1,000 messages up and to the
 * first prompt (which walk far down the branch; each with a time limit). Requests skip the tracer
 * (X-Bench-Untraced); one traced request per statement gives its SQL, whose query plan comes with the result.
 */
async function longRoom(instrumented) {
  const gemini = await startGeminiStub();
  const server = await serveWorker(instrumented, { geminiUrl: gemini.url, consume: false });
  try {
    const db = await migrate(server.mf);
    const api = client(server.url);
    const user = await api.user();
    const long = await api.withRoom(user, "Long");
    const short = await api.withRoom(user, "Short");
    const seededAt = Date.now();
    const longTree = await seedTree(db, {
      roomId: long.roomId,
      userId: user.id,
      mainLength: TREE.mainLength,
      sideBranches: TREE.sideBranches,
      seed: 20,
    });
    const shortTree = await seedTree(db, {
      roomId: short.roomId,
      userId: user.id,
      mainLength: TREE.shortLength,
      sideBranches: 0,
      seed: 20,
    });
    log(
      `  seeded ${longTree.messages} messages (an active branch of ${TREE.mainLength}, ${longTree.sides.length} side branches) and ${shortTree.messages} in ${((Date.now() - seededAt) / 1000).toFixed(1)} s`,
    );

    const untraced = { "X-Bench-Untraced": "1" };
    const get = (path, headers = untraced) => api.request("GET", path, { token: user.token, headers });
    const cursorOf = (tree, back) => tree.main[Math.max(0, tree.main.length - 1 - back)];
    const reads = [
      { read: "first", room: "long", tree: longTree, roomId: long.roomId },
      {
        read: "before",
        room: "long",
        tree: longTree,
        roomId: long.roomId,
        before: cursorOf(longTree, TREE.cursorBack),
      },
      { read: "first", room: "short", tree: shortTree, roomId: short.roomId },
      // The short chatroom's page before its leaf: the rest of it.
      { read: "before", room: "short", tree: shortTree, roomId: short.roomId, before: cursorOf(shortTree, 0) },
    ].map((r) => ({
      ...r,
      path: `/api/chatroom/${r.roomId}/messages?limit=${TREE.pageLimit}${r.before ? `&before=${r.before}` : ""}`,
      times: [],
    }));
    // Each read must give the branch: the messages right before its start, in order.
    for (const r of reads) {
      const answer = await get(r.path);
      if (answer.status !== 200) throw new Error(`${r.path} answered ${answer.status}`);
      const end = r.before ? r.tree.main.indexOf(r.before) : r.tree.main.length;
      const expected = r.tree.main.slice(Math.max(0, end - TREE.pageLimit), end);
      const got = answer.body.messages.map((m) => m.id);
      if (got.join() !== expected.join())
        throw new Error(`${r.room} chatroom, ${r.read} page: not the ${expected.length} branch messages expected`);
    }
    for (let i = 0; i < 5; i++) for (const r of reads) await get(r.path);
    for (let rep = 0; rep < TREE.readReps; rep++) {
      for (const r of reads) {
        const started = performance.now();
        const answer = await get(r.path);
        r.times.push(performance.now() - started);
        if (answer.status !== 200) throw new Error(`${r.path} answered ${answer.status}`);
      }
    }
    const pick = (read, room) => reads.find((r) => r.read === read && r.room === room);
    const pages = Object.fromEntries(
      ["first", "before"].map((read) => {
        const [l, s] = [median(pick(read, "long").times), median(pick(read, "short").times)];
        return [read, { longMs: l, shortMs: s, slowdown: l / s }];
      }),
    );
    // The query plans of the long chatroom's statements, from a traced request's own calls.
    const plans = {};
    const planOf = async (name, pattern) => {
      const call = (await (await fetch(`${server.url}/__bench/trace`)).json()).find(
        (c) => c.kind === "d1" && c.what.some((sql) => pattern.test(sql)),
      );
      const index = call?.what.findIndex((sql) => pattern.test(sql)) ?? -1;
      plans[name] =
        index === -1
          ? ["(statement not found in the trace)"]
          : await queryPlan(db, call.what[index], call.params[index]);
    };
    for (const r of reads.filter((read) => read.room === "long")) {
      await get(r.path, {});
      await planOf(`GET …/messages (${r.read} page)`, /WITH RECURSIVE path/);
    }

    // Switches between a side branch near the leaf and the main branch at the same place, alternately;
    // then to the main branch further up, whose walk down to the leaf is longer.
    const side = longTree.sides[0];
    const mainLeaf = longTree.main.at(-1);
    /** The switch's time in ms, or null when it gave no answer within `timeoutMs`. */
    const switchTo = async (messageId, leaf, { timeoutMs = 60_000, headers = untraced } = {}) => {
      const started = performance.now();
      let response;
      try {
        response = await fetch(`${server.url}/api/chatroom/${long.roomId}/active-branch`, {
          method: "PUT",
          headers: { Authorization: `Bearer ${user.token}`, "Content-Type": "application/json", ...headers },
          body: JSON.stringify({ messageId }),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        if (error?.name === "TimeoutError") return null;
        throw error;
      }
      const answer = await response.json();
      const ms = performance.now() - started;
      if (response.status !== 200) throw new Error(`PUT …/active-branch answered ${response.status}`);
      if (answer.chatroom.activeLeafId !== leaf) throw new Error("PUT …/active-branch ended on the wrong leaf");
      return ms;
    };
    const toSide = () => switchTo(side.ids[0], side.ids.at(-1));
    const toMain = () => switchTo(longTree.main[side.place], mainLeaf);
    for (let i = 0; i < 3; i++) {
      await toSide();
      await toMain();
    }
    const switches = [];
    for (let i = 0; i < TREE.switchReps / 2; i++) switches.push(await toSide(), await toMain());
    await toSide();
    await switchTo(longTree.main[side.place], mainLeaf, { headers: {} });
    await planOf("PUT …/active-branch", /WITH RECURSIVE down/);
    /** Switches to the main branch `back` messages from the leaf (each after one to the side branch). */
    const fromFarther = async (back, reps) => {
      const times = [];
      for (let i = 0; i < reps; i++) {
        await toSide();
        const ms = await switchTo(longTree.main[TREE.mainLength - 1 - back], mainLeaf, {
          timeoutMs: TREE.farSwitchTimeoutMs,
        });
        // A switch still running when its client gave up keeps the database busy: the rest is not measured.
        if (ms === null) return { times, timedOut: true };
        times.push(ms);
      }
      return { times, timedOut: false };
    };
    const far = await fromFarther(TREE.farSwitchBack, TREE.farSwitchReps);
    const root = far.timedOut
      ? { times: [], timedOut: true, skipped: true }
      : await fromFarther(TREE.mainLength - 1, TREE.rootSwitchReps);
    const p50 = (run) => (run.timedOut ? null : median(run.times));
    return {
      messages: longTree.messages,
      sideBranches: longTree.sides.length,
      pages,
      slowdown: Math.max(pages.first.slowdown, pages.before.slowdown),
      switchMs: median(switches),
      switchSteps: TREE.mainLength - 1 - side.place,
      farSwitchMs: p50(far),
      rootSwitchMs: p50(root),
      rootSwitchSkipped: root.skipped ?? false,
      plans,
    };
  } finally {
    await Promise.all([server.mf.dispose(), gemini.close()]);
  }
}

/** The long chatroom as one paragraph of the results. */
function longRoomSummary(tree) {
  const ms = (value) => value.toFixed(1);
  const count = (value) => value.toLocaleString("en");
  const { first, before } = tree.pages;
  const timedOut = `no answer within ${TREE.farSwitchTimeoutMs / 1000} s`;
  const far = (figure, reps) => (figure === null ? timedOut : `${ms(figure)} ms p50 (${reps} switches)`);
  return [
    `**Long chatroom** (an active branch of ${count(TREE.mainLength)} messages, prompts and replies alternating, with ${count(tree.sideBranches)} side branches — earlier prompt and reply versions — hanging off it: ${count(tree.messages)} messages, seeded in D1; against a ${TREE.shortLength}-message chatroom on the same Worker; medians of ${TREE.readReps} interleaved reads):`,
    `the first page of \`GET …/messages?limit=${TREE.pageLimit}\` takes ${ms(first.longMs)} ms against ${ms(first.shortMs)} ms (×${first.slowdown.toFixed(2)}), a page ${count(TREE.cursorBack)} messages back through \`before\` ${ms(before.longMs)} ms against ${ms(before.shortMs)} ms (×${before.slowdown.toFixed(2)}): **slowdown ×${tree.slowdown.toFixed(2)}** (target ≤ 2${tree.slowdown <= 2 ? "" : ": OVER"}).`,
    `\`PUT …/active-branch\` between a prompt version ${tree.switchSteps + 1} messages from the leaf and the main branch there (${tree.switchSteps} steps down to the leaf): **${ms(tree.switchMs)} ms** p50 (${TREE.switchReps} switches).`,
    `To the main branch ${count(TREE.farSwitchBack)} messages from the leaf: ${far(tree.farSwitchMs, TREE.farSwitchReps)}; to the first prompt, walking the whole branch down: ${tree.rootSwitchSkipped ? "not measured (the switch from nearer took too long)" : far(tree.rootSwitchMs, TREE.rootSwitchReps)}.`,
  ].join(" ");
}

/**
 * Search and export (issue: search must stay fast however many messages other users store, and an export
 * must not hold the account in memory). Search runs on `users` users of `messagesPerUser` messages each,
 * seeded in D1 in three stages (the searching user alone, then `midUsers`, then all), timed at each; the
 * export on accounts of `exportMessages` and `exportSmallMessages` messages in a Worker of their own.
 */
const SEARCH = {
  users: 200,
  /** The middle stage of the growth comparison. */
  midUsers: 20,
  messagesPerUser: 1_000,
  roomsPerUser: 10,
  /** In every `commonEvery`-th message of every user (10%: the searching user's and everyone else's). */
  commonWord: "harbour",
  commonEvery: 10,
  /** In these messages (by place in the account) of the searching user and of every `rareUserEvery`-th other one. */
  rareWord: "zeppelin",
  rarePlaces: [17, 505, 988],
  rareUserEvery: 10,
  /** Timed searches per word and stage, the two words interleaved, after `warmups` untimed ones. */
  reps: 100,
  warmups: 50,
  targetMs: 30,
  exportMessages: 50_000,
  exportSmallMessages: 5_000,
  /** Messages per chatroom of the export's accounts. */
  exportRoomMessages: 1_000,
  /** Timed exports per account, small and big alternating (each after resetting users.last_export_at). */
  exportRuns: 3,
  /** How often workerd's RSS is read while an export streams. */
  rssPollMs: 10,
  /**
   * In one more export of the big account the client stops reading after this much of the body, for
   * `exportPauseMs`, and the Worker's live heap is read: by then the Worker has filled the buffers on the
   * way (some MiB) and waits, well before the end.
   */
  exportPauseAtBytes: 1_048_576,
  exportPauseMs: 3_000,
};

/**
 * The searchable vocabulary: the long chatroom's words and 5,000 made-up ones of consonant-vowel
 * syllables. None holds two consonants in a row, so none starts with either search word ("rb", "pp").
 */
const SEARCH_WORDS = (() => {
  const random = seededRandom(7);
  const words = new Set(TREE_WORDS);
  while (words.size < TREE_WORDS.length + 5_000) {
    let word = "";
    for (let s = 1 + Math.floor(random() * 4); s > 0; s--)
      word += "bdfgklmnpstvz"[Math.floor(random() * 13)] + "aeiou"[Math.floor(random() * 5)];
    words.add(word);
  }
  return [...words];
})();

/**
 * A message's text, of the long chatroom's lengths (prompts 60–220 characters, replies 400–1,800), its
 * words drawn with a skew (the first words of the vocabulary far more often, as in real text), with
 * `word` in it at a random place when given.
 */
function searchText(random, role, word) {
  const length = role === "user" ? 60 + Math.floor(random() * 160) : 400 + Math.floor(random() * 1_400);
  const words = [];
  for (let chars = 0; chars < length; chars += words.at(-1).length + 1)
    words.push(SEARCH_WORDS[Math.floor(SEARCH_WORDS.length * random() ** 3)]);
  if (word) words[Math.floor(random() * words.length)] = word;
  return `${words.join(" ")}.`;
}

/**
 * An account's chatrooms and messages, straight into D1: `rooms` chatrooms of `perRoom` messages each,
 * prompt and reply alternating on one branch, a minute apart. `wordAt(place)` names the word (or none)
 * the message at that place in the account holds. Returns the ids of the messages by place.
 */
async function seedAccount(db, { userId, rooms, perRoom, random, wordAt = () => undefined }) {
  const now = Date.now();
  const stepMs = 60_000;
  const base = now - (rooms * perRoom + 10) * stepMs;
  const roomRows = [];
  const rows = [];
  for (let r = 0; r < rooms; r++) {
    const roomId = uuidv7(base + r * perRoom * stepMs - 1);
    let parentId = null;
    for (let i = 0; i < perRoom; i++) {
      const place = r * perRoom + i;
      const role = i % 2 === 0 ? "user" : "assistant";
      const id = uuidv7(base + place * stepMs);
      rows.push({ id, roomId, userId, role, content: searchText(random, role, wordAt(place)), parentId });
      parentId = id;
    }
    roomRows.push([roomId, userId, `Room ${r}`, `room ${r}`, base + r * perRoom * stepMs - 1, now, now, parentId]);
  }
  await db.batch(
    roomRows.map((room) =>
      db
        .prepare(
          "INSERT INTO chatrooms (id, user_id, name, name_key, created_at, updated_at, last_message_at, active_leaf_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(...room),
    ),
  );
  await insertMessages(db, rows);
  return rows.map((row) => row.id);
}

/** Users straight into D1, only there to own messages (no password anyone knows). Returns their ids. */
async function insertUsers(db, count, from) {
  const now = Date.now();
  const ids = Array.from({ length: count }, () => uuidv7(now));
  if (!count) return ids;
  await db
    .prepare(
      `INSERT INTO users (id, phone_number, password_hash, verified_at, created_at, updated_at) VALUES ${ids
        .map(
          (id, i) =>
            `('${id}', '+9198${String(process.pid % 1000).padStart(3, "0")}${String(from + i).padStart(5, "0")}', 'x', ${now}, ${now}, ${now})`,
        )
        .join(", ")}`,
    )
    .run();
  return ids;
}

/** `EXPLAIN QUERY PLAN` of a statement with its parameters, one line per step ("id|parent| detail"). */
const queryPlan = (db, sql, params) =>
  db
    .prepare(`EXPLAIN QUERY PLAN ${sql}`)
    .bind(...params)
    .all()
    .then((result) => result.results.map((row) => `${row.id}|${row.parent}| ${row.detail}`))
    .catch((error) => [`(no plan: ${error.message})`]);

/**
 * Search through the real Worker: `GET /api/search?q=<word>` for a common word (in 10% of every user's
 * messages) and a rare one (in 3 of the user's), timed `reps` times each, interleaved (medians), with
 * the searching user alone, among `midUsers` users and among `users` users of `messagesPerUser` messages
 * each: what it costs a user that others store messages. At each stage each search is first checked
 * (the rare word's 3 messages exactly; a full first page of the common one, all the user's) and made once
 * traced: its D1 round trips and its statement, whose MATCH is then counted with the user's key in it
 * (what FTS5 reads for the user) beside the messages of all users that hold the word. At the end,
 * `EXPLAIN QUERY PLAN` of the statement on the seeded database.
 */
async function searchMessagesBench(instrumented) {
  const gemini = await startGeminiStub();
  const server = await serveWorker(instrumented, { geminiUrl: gemini.url, consume: false });
  try {
    const db = await migrate(server.mf);
    const api = client(server.url);
    const me = await api.user();
    const random = seededRandom(200);
    const perUser = { rooms: SEARCH.roomsPerUser, perRoom: SEARCH.messagesPerUser / SEARCH.roomsPerUser, random };
    const wordAt = (rare) => (place) =>
      rare && SEARCH.rarePlaces.includes(place)
        ? SEARCH.rareWord
        : place % SEARCH.commonEvery === 3
          ? SEARCH.commonWord
          : undefined;
    let seedMs = 0;
    let users = 0;
    /** Seeds the next `count` users (the searching one first), each with `messagesPerUser` messages. */
    const seedUsers = async (count) => {
      const started = Date.now();
      const ids = users === 0 ? [me.id, ...(await insertUsers(db, count - 1, 1))] : await insertUsers(db, count, users);
      const placed = [];
      for (const [i, userId] of ids.entries()) {
        const n = users + i;
        placed.push(await seedAccount(db, { userId, ...perUser, wordAt: wordAt(n % SEARCH.rareUserEvery === 0) }));
      }
      users += count;
      seedMs += Date.now() - started;
      log(
        `  seeded ${users} users, ${users * SEARCH.messagesPerUser} messages (${((Date.now() - started) / 1000).toFixed(1)} s for these ${count})`,
      );
      return placed;
    };
    const [myMessages] = await seedUsers(1);
    const rareIds = SEARCH.rarePlaces.map((place) => myMessages[place]).sort();
    const myCommon = SEARCH.messagesPerUser / SEARCH.commonEvery;
    const words = [SEARCH.commonWord, SEARCH.rareWord];

    const untraced = { "X-Bench-Untraced": "1" };
    const search = (word, headers = untraced) =>
      api.request("GET", `/api/search?q=${word}`, { token: me.token, headers });
    /** The statement the last traced request ran against message_terms, with its parameters. */
    const tracedStatement = async () => {
      const call = (await (await fetch(`${server.url}/__bench/trace`)).json()).find(
        (c) => c.kind === "d1" && c.what.some((sql) => /message_terms MATCH/.test(sql)),
      );
      const index = call?.what.findIndex((sql) => /message_terms MATCH/.test(sql)) ?? -1;
      if (index === -1) throw new Error("the search statement is not in the trace");
      return { sql: call.what[index], params: call.params[index] };
    };
    /**
     * Rows of message_terms matching the statement's MATCH expression with `userId`'s key in it (what
     * FTS5 reads for that user's search), and the rows holding the word under any user's key.
     */
    const matching = async (match, userId) =>
      (
        await db
          .prepare(
            "SELECT count(*) AS n FROM message_terms WHERE message_terms MATCH (SELECT replace(?1, char(1), search_key) FROM users WHERE id = ?2)",
          )
          .bind(match, userId)
          .first()
      ).n;
    const everyones = async (word) =>
      (await db.prepare("SELECT count(*) AS n FROM messages WHERE content LIKE ?1").bind(`%${word}%`).first()).n;
    /** The stage's checks, round trips, statements and timings. */
    const stage = async () => {
      const common = await search(SEARCH.commonWord);
      const rare = await search(SEARCH.rareWord);
      if (common.status !== 200 || rare.status !== 200)
        throw new Error(`GET /api/search answered ${common.status} and ${rare.status}`);
      const mine = new Set(myMessages);
      if (
        common.body.results.length !== 20 ||
        !common.body.nextCursor ||
        common.body.results.some((r) => !mine.has(r.messageId))
      )
        throw new Error(`the common word's first page is not 20 of the user's ${myCommon} messages`);
      const found = rare.body.results.map((r) => r.messageId).sort();
      if (found.join() !== rareIds.join())
        throw new Error(`the rare word did not find the user's ${rareIds.length} messages`);
      const trips = {};
      const statements = {};
      for (const word of words) {
        const traced = await search(word, {});
        trips[word] = Number(traced.headers.get("X-Bench-D1"));
        statements[word] = await tracedStatement();
      }
      for (let i = 0; i < SEARCH.warmups; i++) await search(words[i % 2]);
      const times = Object.fromEntries(words.map((word) => [word, []]));
      for (let rep = 0; rep < SEARCH.reps; rep++) {
        for (const word of words) {
          const started = performance.now();
          const answer = await search(word);
          times[word].push(performance.now() - started);
          if (answer.status !== 200) throw new Error(`GET /api/search?q=${word} answered ${answer.status}`);
        }
      }
      const rows = {
        statement: await matching(statements[SEARCH.commonWord].params[0], me.id),
        word: await everyones(SEARCH.commonWord),
      };
      if (rows.statement !== myCommon)
        throw new Error(`the user's common-word matches are ${rows.statement}, not ${myCommon}`);
      return {
        users,
        messages: users * SEARCH.messagesPerUser,
        commonMs: median(times[SEARCH.commonWord]),
        rareMs: median(times[SEARCH.rareWord]),
        commonP95Ms: percentile(times[SEARCH.commonWord], 95),
        rareP95Ms: percentile(times[SEARCH.rareWord], 95),
        d1RoundTrips: trips,
        ftsRows: rows,
        statements,
      };
    };
    const stages = [await stage()];
    await seedUsers(SEARCH.midUsers - 1);
    stages.push(await stage());
    await seedUsers(SEARCH.users - SEARCH.midUsers);
    stages.push(await stage());

    const { sql, params } = stages.at(-1).statements[SEARCH.commonWord];
    const plan = await queryPlan(db, sql, params);
    for (const s of stages) delete s.statements;
    return { seedSeconds: Number((seedMs / 1000).toFixed(1)), stages, sql: sql.trim(), match: params[0], plan };
  } finally {
    await Promise.all([server.mf.dispose(), gemini.close()]);
  }
}

/**
 * The V8 heap of one of workerd's isolates (`core:user:` is the Worker), through the inspector of a Worker
 * served with `inspectorPort`: `usage()` as it is, garbage included; `live()` after a full GC, which
 * workerd runs for a heap snapshot (it does not answer HeapProfiler.collectGarbage). MiB.
 */
async function isolateHeap(inspectorPort, isolate = "core:user:") {
  const { send, close } = await inspect(inspectorPort, isolate);
  const usage = async () => {
    const { usedSize, totalSize } = await send("Runtime.getHeapUsage");
    return { usedMiB: Number((usedSize / 1_048_576).toFixed(1)), totalMiB: Number((totalSize / 1_048_576).toFixed(1)) };
  };
  return {
    usage,
    async live() {
      await send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
      return (await usage()).usedMiB;
    },
    close,
  };
}

/**
 * A full GC in every isolate of a Worker served with `inspectorPort` (the Worker's own, and Miniflare's
 * simulators of D1, KV, Queues and the cache), through heap snapshots; each isolate's live heap after it. MiB.
 */
async function collectEveryIsolate(inspectorPort) {
  const list = await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json();
  const live = {};
  for (const { id } of list) {
    const heap = await isolateHeap(inspectorPort, id);
    try {
      live[id] = await heap.live();
    } finally {
      heap.close();
    }
  }
  return live;
}

/**
 * `GET /api/user/export` of an account of `exportMessages` messages (chatrooms of `exportRoomMessages`)
 * against one of `exportSmallMessages`, in a Worker of their own: the time to the end of the body (read
 * whole, parsed, its messages counted; medians of `exportRuns`), workerd's RSS just before and at its
 * highest while the export streams (read every `rssPollMs`), the Worker's V8 heap at the end, and its live
 * JS heap (after a full GC, through the inspector) before and after each export, and in the middle of one
 * more export of the big account whose client stops reading after `exportPauseAtBytes` for `exportPauseMs`
 * (the stream's backpressure holds the export there, once the buffers on the way are full). The small account
 * goes first, so the big one finds the memory the small one left and grows only by what it needs more. A
 * first export of a 20-message account loads the code beforehand.
 */
async function exportBench(instrumented) {
  const gemini = await startGeminiStub();
  const inspectorPort = await freePort();
  const server = await serveWorker(instrumented, { geminiUrl: gemini.url, consume: false, inspectorPort });
  let heap;
  try {
    const db = await migrate(server.mf);
    const api = client(server.url);
    const random = seededRandom(50);
    const seededAt = Date.now();
    const account = async (messages) => {
      const user = await api.user();
      const rooms = Math.ceil(messages / SEARCH.exportRoomMessages);
      await seedAccount(db, { userId: user.id, rooms, perRoom: messages / rooms, random });
      return { ...user, messages };
    };
    const warm = await account(20);
    const small = await account(SEARCH.exportSmallMessages);
    const big = await account(SEARCH.exportMessages);
    log(
      `  seeded ${SEARCH.exportMessages + SEARCH.exportSmallMessages + 20} messages in ${((Date.now() - seededAt) / 1000).toFixed(1)} s`,
    );
    heap = await isolateHeap(inspectorPort);

    /** One export (its time, size, workerd's RSS and the Worker's heap), paused at `pauseAt` bytes if given. */
    const exportOf = async (user, pauseAt) => {
      await db.prepare("UPDATE users SET last_export_at = NULL WHERE id = ?1").bind(user.id).run();
      const liveBeforeMiB = await heap.live();
      await sleep(300);
      const rssBeforeMiB = rssMiB(server.pids);
      let rssPeakMiB = rssBeforeMiB;
      const polling = setInterval(() => {
        rssPeakMiB = Math.max(rssPeakMiB, rssMiB(server.pids) ?? 0);
      }, SEARCH.rssPollMs);
      const started = performance.now();
      const chunks = [];
      let bytes = 0;
      let liveMidMiB = null;
      let resumedAt = null;
      try {
        const response = await fetch(`${server.url}/api/user/export`, {
          headers: { Authorization: `Bearer ${user.token}`, "X-Bench-Untraced": "1" },
        });
        if (response.status !== 200) throw new Error(`GET /api/user/export answered ${response.status}`);
        for await (const chunk of response.body) {
          chunks.push(chunk);
          bytes += chunk.length;
          if (pauseAt && liveMidMiB === null && bytes >= pauseAt) {
            await sleep(SEARCH.exportPauseMs);
            liveMidMiB = await heap.live();
            resumedAt = performance.now();
          }
        }
      } finally {
        clearInterval(polling);
      }
      const ended = performance.now();
      const ms = ended - started;
      rssPeakMiB = Math.max(rssPeakMiB, rssMiB(server.pids) ?? 0);
      const heapEnd = await heap.usage();
      const liveAfterMiB = await heap.live();
      const document = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      const messages = document.chatrooms.reduce((sum, room) => sum + room.messages.length, 0);
      if (messages !== user.messages) throw new Error(`the export holds ${messages} messages, not ${user.messages}`);
      return {
        messages,
        bytes,
        ms,
        rssBeforeMiB,
        rssPeakMiB,
        rssAfterGcMiB: rssMiB(server.pids),
        heapTotalEndMiB: heapEnd.totalMiB,
        liveBeforeMiB,
        liveMidMiB,
        liveAfterMiB,
        // After the pause: the rest of the body's time (most of an export's if the export had waited early on).
        restMs: resumedAt === null ? null : ended - resumedAt,
      };
    };
    await exportOf(warm);
    const runs = new Map([
      [small, []],
      [big, []],
    ]);
    for (let run = 0; run < SEARCH.exportRuns; run++) for (const [user, list] of runs) list.push(await exportOf(user));
    // In the middle of the big one (a small export fits in the buffers between the Worker and the client).
    const paused = await exportOf(big, SEARCH.exportPauseAtBytes);
    const mib = (value) => Number(value.toFixed(1));
    const summary = (user) => {
      const [first, ...rest] = runs.get(user);
      return {
        messages: first.messages,
        bodyMiB: mib(first.bytes / 1_048_576),
        msP50: Math.round(median([first, ...rest].map((r) => r.ms))),
        messagesPerSecond: Math.round(median([first, ...rest].map((r) => r.messages / (r.ms / 1000)))),
        // The first export of the account: workerd's RSS before, at peak, and after the Worker's GC.
        rssBeforeMiB: first.rssBeforeMiB,
        rssPeakMiB: first.rssPeakMiB,
        rssGrowthMiB: mib(first.rssPeakMiB - first.rssBeforeMiB),
        rssAfterGcMiB: first.rssAfterGcMiB,
        rssGrowthLaterRunsMiB: rest.map((r) => mib(r.rssPeakMiB - r.rssBeforeMiB)),
        heapTotalEndMiB: first.heapTotalEndMiB,
        liveAfterMiB: first.liveAfterMiB,
      };
    };
    return {
      small: summary(small),
      big: summary(big),
      // The Worker's live heap before the paused export of the big account, during the pause, and after.
      paused: {
        liveBeforeMiB: paused.liveBeforeMiB,
        liveMidMiB: paused.liveMidMiB,
        liveGrowthMiB: mib(paused.liveMidMiB - paused.liveBeforeMiB),
        liveAfterMiB: paused.liveAfterMiB,
        restAfterPauseMs: Math.round(paused.restMs),
      },
    };
  } finally {
    heap?.close();
    await Promise.all([server.mf.dispose(), gemini.close()]);
  }
}

/** Search, then the export. */
async function searchAndExport(instrumented) {
  const search = await searchMessagesBench(instrumented);
  log(`export: accounts of ${SEARCH.exportMessages} and ${SEARCH.exportSmallMessages} messages`);
  return { search, export: await exportBench(instrumented) };
}

/** Search and export as one paragraph of the results, with the search statement's query plan. */
function searchSummary({ search, export: exported }) {
  const ms = (value) => value.toFixed(1);
  const count = (value) => value.toLocaleString("en");
  const [alone, mid, all] = search.stages;
  const trips = Object.values(all.d1RoundTrips);
  const within = (value) => (value <= SEARCH.targetMs ? "" : ": OVER");
  const { small, big, paused } = exported;
  // Had the export waited for the client (the rest of the body as long as half an export, at least)?
  const waited = paused.restAfterPauseMs >= big.msP50 / 2;
  return [
    `**Search** (\`GET /api/search?q=…\` through the Worker: ${count(SEARCH.users)} users of ${count(SEARCH.messagesPerUser)} messages, ${count(all.messages)} in all, seeded in D1 with their search terms in ${search.seedSeconds} s; "${SEARCH.commonWord}" in ${100 / SEARCH.commonEvery}% of every user's messages, "${SEARCH.rareWord}" in ${SEARCH.rarePlaces.length} of the user's and of every ${SEARCH.rareUserEvery}th other user's; medians of ${SEARCH.reps} interleaved searches per word):`,
    `the common word **${ms(all.commonMs)} ms**, the rare one **${ms(all.rareMs)} ms** (target ≤ ${SEARCH.targetMs}${within(Math.max(all.commonMs, all.rareMs))}), in **${trips.every((n) => n === 1) ? "one D1 round trip" : `${trips.join(" and ")} D1 round trips`}**.`,
    `With the user's ${count(SEARCH.messagesPerUser)} messages alone: ${ms(alone.commonMs)} and ${ms(alone.rareMs)} ms; among ${mid.users} users (${count(mid.messages)} messages): ${ms(mid.commonMs)} and ${ms(mid.rareMs)} ms.`,
    `Every word is indexed after its user's search key, so the statement's MATCH reads the user's own ${count(all.ftsRows.statement)} rows of "${SEARCH.commonWord}"* (${count(alone.ftsRows.statement)} alone) while ${count(all.ftsRows.word)} messages of all users hold the word (${count(alone.ftsRows.word)} alone): bm25() counts the user's rows of each term, and a prefix merges only the user's terms. The common word: ${ms(alone.commonMs)} ms alone, ${ms(mid.commonMs)} among ${mid.users} users, ${ms(all.commonMs)} among ${all.users}${all.commonMs <= alone.commonMs * 1.25 ? " (no growth beyond run-to-run noise)" : `: **${(all.commonMs / alone.commonMs).toFixed(2)}× alone**`}.`,
    `Query plan: ${search.plan.map((line) => `\`${line.replace(/^\d+\|\d+\| /, "")}\``).join(", ")}.`,
    `**Export** (\`GET /api/user/export\` read to the end and parsed, median of ${SEARCH.exportRuns}): ${count(big.messages)} messages (${big.bodyMiB} MiB of JSON) in ${(big.msP50 / 1000).toFixed(1)} s: **${count(big.messagesPerSecond)} messages/s** (${count(small.messages)} messages: ${count(small.messagesPerSecond)}/s).`,
    `workerd's RSS at its peak over just before, first export of each: **+${big.rssGrowthMiB} MiB** for ${count(big.messages)} messages (${big.rssBeforeMiB} → ${big.rssPeakMiB} MiB), **+${small.rssGrowthMiB} MiB** for ${count(small.messages)} (${small.rssBeforeMiB} → ${small.rssPeakMiB}). The Worker's V8 heap had grown to ${big.heapTotalEndMiB} MiB (${small.heapTotalEndMiB} for ${count(small.messages)}) of garbage not yet collected: after a full GC RSS was ${big.rssAfterGcMiB} MiB, the rest being memory V8 keeps and the local D1's SQLite page cache, in the same process here and on D1's side in production.`,
    `What the export holds: the Worker's live JS heap (after a full GC) with the client stopped after ${count(SEARCH.exportPauseAtBytes / 1_048_576)} MiB of the ${count(big.messages)}-message body for ${SEARCH.exportPauseMs / 1000} s is **+${paused.liveGrowthMiB} MiB** over before (${paused.liveBeforeMiB} → ${paused.liveMidMiB} MiB; ${waited ? `the export was waiting in the middle: the rest of the body took ${count(paused.restAfterPauseMs)} ms more` : `but the export was near its end: the rest of the body took only ${count(paused.restAfterPauseMs)} ms`}), against ${big.bodyMiB} MiB for the whole body.`,
  ].join(" ");
}

/**
 * Load runs per side for the floor comparison (local throughput swings ±30% from run to run); even, as
 * each pair alternates which side goes first.
 */
const FLOOR_RUNS = 10;

/** The hot reads whose throughput is compared with their binding floor. */
const HOT_READS = [
  ["GET /api/user/me", () => "/api/user/me"],
  ["GET /api/chatroom (cached)", () => "/api/chatroom"],
  ["GET /api/chatroom/:id", (f) => `/api/chatroom/${f.basic.roomId}`],
  ["GET /api/chatroom/:id/messages", (f) => `/api/chatroom/${f.basic.roomId}/messages?limit=20`],
];

/**
 * For each hot read: its throughput on the instrumented build, and that of the floor replaying exactly
 * the binding calls one such request made (bench/floor.ts), in the same runtime and on the same data.
 * The load runs skip the tracer (X-Bench-Untraced): both sides pay only the build's dispatch on its path.
 */
async function floorShares(instrumented) {
  const gemini = await startGeminiStub();
  const server = await serveWorker(instrumented, { geminiUrl: gemini.url, consume: false });
  const shares = new Map();
  try {
    await migrate(server.mf);
    const api = client(server.url);
    const fixtures = await api.fixtures();
    const headers = { Authorization: `Bearer ${fixtures.basic.token}` };
    const untraced = { ...headers, "X-Bench-Untraced": "1" };
    for (const [name, pathOf] of HOT_READS) {
      const path = pathOf(fixtures);
      // Warm (a list is cached after its first read), then trace one request as the floor's plan.
      for (let i = 0; i < 3; i++) {
        await fetch(`${server.url}${path}`, { headers }).then((r) => r.arrayBuffer());
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const slug = encodeURIComponent(name);
      await fetch(`${server.url}/__bench/floor/${slug}`, { method: "POST" });
      // Interleaved runs, so drift on a busy machine hits both sides alike; medians of FLOOR_RUNS each.
      // Each pair alternates which side goes first (ours, floor; floor, ours; …): a run that follows
      // another pays for the garbage that one left, and neither side always follows.
      const ours = [];
      const floorRuns = [];
      const runOurs = async () => ours.push((await loadRun(`${server.url}${path}`, untraced)).requests.average);
      const runFloor = async () =>
        floorRuns.push((await loadRun(`${server.url}/__floor/${slug}`, untraced)).requests.average);
      for (let run = 0; run < FLOOR_RUNS; run++) {
        if (run % 2 === 0) {
          await runOurs();
          await runFloor();
        } else {
          await runFloor();
          await runOurs();
        }
      }
      // The share is the median of each back-to-back pair's ratio: the machine's drift between pairs
      // (others' load, CPU frequency) then cancels out instead of widening the spread.
      const share = median(ours.map((rps, i) => rps / floorRuns[i]));
      shares.set(name, { ours: median(ours), floor: median(floorRuns), share });
      log(
        `  ${name}: ${median(ours).toFixed(0)} req/s, floor ${median(floorRuns).toFixed(0)} req/s, share ${(share * 100).toFixed(0)}%`,
      );
    }
  } finally {
    await Promise.all([server.mf.dispose(), gemini.close()]);
  }
  return shares;
}

/**
 * Where each hot read's CPU goes beside its floor's (`--only=profile`): one load run of each side under
 * the Worker isolate's sampling profiler; per request, the microseconds spent in each source file, ours
 * and the floor's, largest difference first. For finding what to cut, not a figure of the results:
 * with the inspector attached, each console.log also goes to it, so the log line costs far more here
 * than in a load run. PROFILE_TOP=n rows per table (25); PROFILE_SAVE=dir keeps the .cpuprofile files.
 */
async function profileHotReads(instrumented) {
  const { chargeSamples, profileWhile, sourceMapLookup } = await import("./cpu-profile.mjs");
  const lookup = sourceMapLookup(`${instrumented}.map`);
  const gemini = await startGeminiStub();
  const inspectorPort = await freePort();
  const server = await serveWorker(instrumented, { geminiUrl: gemini.url, consume: false, inspectorPort });
  const top = Number(process.env.PROFILE_TOP ?? 25);
  try {
    await migrate(server.mf);
    const fixtures = await client(server.url).fixtures();
    const headers = { Authorization: `Bearer ${fixtures.basic.token}` };
    const untraced = { ...headers, "X-Bench-Untraced": "1" };
    for (const [name, pathOf] of HOT_READS) {
      const path = pathOf(fixtures);
      for (let i = 0; i < 3; i++) await fetch(`${server.url}${path}`, { headers }).then((r) => r.arrayBuffer());
      const slug = encodeURIComponent(name);
      await fetch(`${server.url}/__bench/floor/${slug}`, { method: "POST" });
      const sides = {};
      for (const [side, url] of [
        ["floor", `${server.url}/__floor/${slug}`],
        ["ours", `${server.url}${path}`],
      ]) {
        await loadRun(url, untraced);
        const { profile, result } = await profileWhile(inspectorPort, () => loadRun(url, untraced));
        if (process.env.PROFILE_SAVE)
          writeFileSync(`${process.env.PROFILE_SAVE}/${slug}-${side}.cpuprofile`, JSON.stringify(profile));
        const charged = chargeSamples(profile, lookup, instrumented.split("/").pop());
        sides[side] = { ...charged, requests: result.requests.total };
      }
      const perRequest = (side, map, key) => (map.get(key) ?? 0) / sides[side].requests;
      const usOf = (side) => sides[side].busy / sides[side].requests;
      console.log(
        `\n== ${name}: ${usOf("ours").toFixed(0)} µs of CPU a request, floor ${usOf("floor").toFixed(0)} µs (${((usOf("floor") / usOf("ours")) * 100).toFixed(0)}%)`,
      );
      for (const table of ["byFile", "byFunction"]) {
        const keys = new Set([...sides.ours[table].keys(), ...sides.floor[table].keys()]);
        const rows = [...keys]
          .map((key) => {
            const ours = perRequest("ours", sides.ours[table], key);
            const floorUs = perRequest("floor", sides.floor[table], key);
            return {
              [table === "byFile" ? "file" : "function"]: key,
              ours: ours.toFixed(1),
              floor: floorUs.toFixed(1),
              extra: ours - floorUs,
            };
          })
          .sort((a, b) => b.extra - a.extra)
          .slice(0, top)
          .map((row) => ({ ...row, extra: row.extra.toFixed(1) }));
        console.table(rows);
      }
    }
  } finally {
    await Promise.all([server.mf.dispose(), gemini.close()]);
  }
}

/**
 * Global-scope CPU of a bundle (ours by default), from `wrangler check startup`'s profile, median of 5
 * runs with samples. Each busy sample counts one sampling interval (the profile's median): a pause in which the
 * profiler took no sample (its thread not scheduled on this shared machine) is not charged to the script.
 */
function startupCpuMs(bundle) {
  const runs = [];
  const outfile = `${BUILD}/startup.cpuprofile`;
  // A profile with no busy sample at all (the profiler started after the script ran) is taken again.
  for (let attempt = 0; runs.length < 5 && attempt < 10; attempt++) {
    wrangler(["check", "startup", "--outfile", outfile, ...(bundle ? ["--worker", bundle] : [])]);
    const profile = JSON.parse(readFileSync(outfile, "utf8"));
    const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
    const interval = median(profile.timeDeltas.slice(1));
    let busy = 0;
    profile.samples.forEach((id, index) => {
      if (nodes.get(id).callFrame.functionName !== "(idle)")
        busy += Math.min(profile.timeDeltas[index + 1] ?? interval, interval);
    });
    if (busy > 0) runs.push(busy / 1000);
  }
  return { runs, median: median(runs) };
}

/** Our startup, and that of the libraries alone (bench/startup-floor.ts), the bound on what we can save. */
function startup() {
  const floorBundle = `${BUILD}/startup-floor/worker.bundle`;
  wrangler(["deploy", "--dry-run", "--outfile", floorBundle, "bench/startup-floor.ts"]);
  const ours = startupCpuMs();
  return { ...ours, libraries: startupCpuMs(floorBundle).median };
}

/**
 * Cold requests. Nothing is built at startup (src/index.ts): the first request to each part of the API
 * loads that part (its modules evaluated, its routes and request schemas built) and, the first time in an
 * isolate, what every part shares (Hono, zod, Drizzle, the middleware, src/app.ts). Each part is asked in a
 * fresh Worker (a new workerd process) COLD.runs times: the workerd process's CPU for its first request and
 * for the same request again; the difference is what the cold request pays. The account part's Workers,
 * once they have served it, then ask the chat part too: what a second part costs when the shared code is
 * loaded. A trivial Worker measured the same way gives what any first request costs workerd itself.
 */
const COLD = { runs: 5, settleMs: 50, warmCalls: 20 };
const COLD_PARTS = [
  { part: "none", name: "GET / (health)", path: "/" },
  { part: "account", name: "GET /api/user/me", path: "/api/user/me" },
  { part: "chat", name: "GET /api/chatroom", path: "/api/chatroom" },
  { part: "billing", name: "GET /api/billing/subscription/status", path: "/api/billing/subscription/status" },
  { part: "everything", name: "GET /openapi.json", path: "/openapi.json" },
];
const coldLogLine = `cold requests: the first request to each part of the API in a fresh Worker, and the same request again, ${COLD.runs} Workers per part`;

const get = (server, path, token) =>
  fetch(`${server.url}${path}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });

/**
 * The workerd CPU (ms) of one request, counted until COLD.settleMs after its answer: work it leaves to
 * other threads (V8's background compilation and GC) is counted with it.
 */
async function requestCpuMs(server, path, token) {
  const start = cpuNanoseconds(server.pids);
  const response = await get(server, path, token);
  const body = await response.text();
  await new Promise((resolve) => setTimeout(resolve, COLD.settleMs));
  const cpu = (cpuNanoseconds(server.pids) - start) / 1e6;
  if (response.status >= 400) throw new Error(`${path} answered ${response.status}: ${body}`);
  return cpu;
}

/**
 * The first and the second request to `path` on `server`, then COLD.warmCalls more in one window: the
 * request once warm, to show what the second request still pays.
 */
async function firstAndSecond(server, path, token) {
  const first = await requestCpuMs(server, path, token);
  const second = await requestCpuMs(server, path, token);
  const start = cpuNanoseconds(server.pids);
  for (let i = 0; i < COLD.warmCalls; i++) await (await get(server, path, token)).arrayBuffer();
  await new Promise((resolve) => setTimeout(resolve, COLD.settleMs));
  return { first, second, warm: (cpuNanoseconds(server.pids) - start) / 1e6 / COLD.warmCalls };
}

async function coldRequests(scriptPath) {
  const persistTo = mkdtempSync(join(tmpdir(), "gemini-backend-cold-"));
  // No prompt is sent, so nothing calls Gemini; one JWT secret, so the token made once works in every Worker.
  const bindings = { JWT_SECRET: randomBytes(32).toString("hex") };
  const options = { geminiUrl: "http://127.0.0.1:9", consume: false, persistTo, bindings };
  const samples = {
    trivial: [],
    chatAfterAccount: [],
    ...Object.fromEntries(COLD_PARTS.map(({ part }) => [part, []])),
  };
  try {
    // A user with a chatroom, made through the API once and kept on disk for every fresh Worker; the list
    // read twice, so it is cached in KV as for a user who has read it before.
    const setup = await serveWorker(scriptPath, options);
    let token;
    try {
      await migrate(setup.mf);
      const api = client(setup.url);
      ({ token } = await api.withRoom(await api.user(), "Cold"));
      for (let i = 0; i < 2; i++) await api.request("GET", "/api/chatroom", { token });
    } finally {
      await setup.mf.dispose();
    }
    // Runs outermost, so a slow stretch of the machine hits every part alike.
    for (let run = 0; run < COLD.runs; run++) {
      const trivial = await serve({ script: 'export default { fetch: () => new Response("ok") }' });
      try {
        samples.trivial.push(await firstAndSecond(trivial, "/"));
      } finally {
        await trivial.mf.dispose();
      }
      for (const { part, path } of COLD_PARTS) {
        const server = await serveWorker(scriptPath, options);
        try {
          // D1's and KV's local simulators run in the same workerd process (in production they run
          // elsewhere): woken here, through Miniflare's proxy, so the first request does not pay for them.
          await (await server.mf.getD1Database("DB")).prepare("SELECT count(*) FROM users").first();
          await (await server.mf.getKVNamespace("CACHE")).get("bench:cold");
          samples[part].push(await firstAndSecond(server, path, token));
          if (part === "account") samples.chatAfterAccount.push(await firstAndSecond(server, "/api/chatroom", token));
        } finally {
          await server.mf.dispose();
        }
      }
    }
  } finally {
    rmSync(persistTo, { recursive: true, force: true });
  }
  const round = (ms) => Number(ms.toFixed(1));
  return Object.fromEntries(
    Object.entries(samples).map(([part, pairs]) => [
      part,
      {
        first: round(median(pairs.map((p) => p.first))),
        second: round(median(pairs.map((p) => p.second))),
        warm: round(median(pairs.map((p) => p.warm))),
        // The median of each Worker's own difference, not the difference of the medians.
        extra: round(median(pairs.map((p) => p.first - p.second))),
      },
    ]),
  );
}

/** The cold requests as a sentence of the Startup paragraph. */
function coldSummary(cold) {
  const ms = (part) => `${cold[part].extra.toFixed(1)} ms`;
  return [
    `The first request to a part of the API costs this much more CPU than the same request made again (the workerd process's CPU, each part in a fresh Worker; median of ${COLD.runs} Workers):`,
    `the health check \`GET /\`, which loads what every part shares (\`src/app.ts\`, Hono, zod, Drizzle), **${ms("none")}**;`,
    `account (\`GET /api/user/me\`) **${ms("account")}**; chat (\`GET /api/chatroom\`) **${ms("chat")}**, or ${ms("chatAfterAccount")} when the account part is already loaded;`,
    `billing (\`GET /api/billing/subscription/status\`) **${ms("billing")}**; \`GET /openapi.json\` (every part, and the document built) **${ms("everything")}**.`,
    `A trivial Worker's first request costs ${ms("trivial")} more than its second. Nor is the second request warm yet (its CPU, then the mean of the ${COLD.warmCalls} after it: ${COLD_PARTS.map(({ part, name }) => `${name} ${cold[part].second.toFixed(1)} then ${cold[part].warm.toFixed(1)} ms`).join("; ")}).`,
  ].join(" ");
}

/**
 * The soak: the same traffic twice on one Worker, each pass followed by a drain, and the workerd RSS
 * after each drain. What the second pass adds is what the Worker keeps per prompt or per connection.
 * Every loop has a count and a time limit; a failed request is counted and reported, never thrown.
 */
const SOAK = {
  passes: 2,
  prompts: 1000,
  connections: 150,
  users: 10,
  roomsPerUser: 2,
  /** Prompt actions (a send and what the client does with it) in flight at once. */
  concurrency: 16,
  /** Stream connections of the 150 open at once, at most. */
  maxOpenConnections: 40,
  /**
   * Sends wait while this many prompts are pending: the local broker answers one batch of 10 at a time,
   * so an unbounded backlog would only make the streamed prompts wait in the queue.
   */
  maxBacklog: 80,
  /** A pass stops sending after this long; what was not sent by then is reported. */
  trafficMs: 180_000,
  /** The drain gives up after this long (an `[overloaded]` prompt takes ≈ 30 s of queue back-off). */
  drainMs: 90_000,
  settleMs: 5_000,
  /** Any one request or stream is abandoned (and counted) after this long. */
  requestMs: 60_000,
  /** A stream connection of the 150 lives at most this long. */
  connectionMs: 20_000,
};
/** 20 prompt actions, repeated; every 50th prompt is `[overloaded]` instead (retried by the queue, then failed). */
const SOAK_PROMPT_KINDS = [
  "plain",
  "streamed",
  "plain",
  "poll",
  "streamed",
  "cut",
  "plain",
  "streamed",
  "cancel-stream",
  "plain",
  "streamed",
  "cancel-retry",
  "poll",
  "block-retry",
  "plain",
  "streamed",
  "cut",
  "drop",
  "streamed",
  "plain",
];
const soakPromptKind = (i) => (i % 50 === 49 ? "overloaded" : SOAK_PROMPT_KINDS[i % SOAK_PROMPT_KINDS.length]);
/** The stub's markers: `[slow]` spaces chunks 400 ms (time to press stop), `[drop]` cuts Gemini's stream once. */
const SOAK_MARKERS = {
  "cancel-stream": "[slow]",
  drop: "[drop]",
  "block-retry": "[block]",
  overloaded: "[overloaded]",
};
/** 15 connection kinds, repeated: `/events` over SSE and WebSocket, and per-prompt streams. */
const SOAK_CONNECTION_KINDS = [
  "events-close",
  "events-drop",
  "ws-close",
  "prompt-stream",
  "events-close",
  "ws-drop",
  "events-drop",
  "prompt-stream-drop",
  "events-close",
  "events-drop",
  "ws-close",
  "prompt-stream",
  "events-close",
  "ws-drop",
  "prompt-stream-drop",
];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** VmRSS of the given processes together, in MiB (null when none can be read). */
function rssMiB(pids) {
  let kib = 0;
  let read = 0;
  for (const pid of pids) {
    try {
      const line = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (line) {
        kib += Number(line[1]);
        read++;
      }
    } catch {}
  }
  return read ? Number((kib / 1024).toFixed(1)) : null;
}

/** Established TCP connections whose local port is `port` (the server's side of each client connection). */
function tcpConnectionsTo(port) {
  let count = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length > 3 && fields[3] === "01" && Number.parseInt(fields[1].split(":")[1], 16) === port) count++;
    }
  }
  return count;
}

/**
 * A WebSocket client over a plain HTTP upgrade, so the client can both close cleanly (a close frame)
 * and drop the connection without one, as a phone losing its network does. Resolves with the status;
 * with 101 also `{ send, close, drop, ended }` (`ended` resolves with who ended it).
 */
function openWebSocket(url, onText) {
  return new Promise((resolve) => {
    const target = new URL(url);
    const request = httpRequest({
      host: target.hostname,
      port: target.port,
      path: `${target.pathname}${target.search}`,
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
      },
    });
    // Only until the upgrade: the socket it hands over then lives on its own.
    const timer = setTimeout(() => request.destroy(new Error("timed out")), SOAK.requestMs);
    request.on("response", (response) => {
      clearTimeout(timer);
      response.resume();
      resolve({ status: response.statusCode });
    });
    request.on("error", (error) => {
      clearTimeout(timer);
      resolve({ status: 0, error });
    });
    request.on("upgrade", (_response, socket, head) => {
      clearTimeout(timer);
      let buffer = Buffer.from(head);
      let fragments = [];
      let closing = false;
      let endedBy;
      let markEnded;
      const ended = new Promise((done) => {
        markEnded = done;
      });
      const end = (who) => {
        endedBy ??= who;
        markEnded(endedBy);
      };
      const frame = (opcode, payload) => {
        const mask = randomBytes(4);
        const header =
          payload.length < 126
            ? Buffer.from([0x80 | opcode, 0x80 | payload.length])
            : Buffer.from([0x80 | opcode, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
        const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]));
        if (!socket.destroyed) socket.write(Buffer.concat([header, mask, masked]));
      };
      const parse = () => {
        for (;;) {
          if (buffer.length < 2) return;
          const fin = (buffer[0] & 0x80) !== 0;
          const opcode = buffer[0] & 0x0f;
          const masked = (buffer[1] & 0x80) !== 0;
          let length = buffer[1] & 0x7f;
          let offset = 2;
          if (length === 126) {
            if (buffer.length < 4) return;
            length = buffer.readUInt16BE(2);
            offset = 4;
          } else if (length === 127) {
            if (buffer.length < 10) return;
            length = Number(buffer.readBigUInt64BE(2));
            offset = 10;
          }
          const maskAt = offset;
          if (masked) offset += 4;
          if (buffer.length < offset + length) return;
          let payload = buffer.subarray(offset, offset + length);
          if (masked) payload = Buffer.from(payload.map((byte, i) => byte ^ buffer[maskAt + (i % 4)]));
          buffer = buffer.subarray(offset + length);
          if (opcode === 0x8) {
            // The server's close (or its answer to ours): answer it once, then the TCP connection ends.
            if (!closing) {
              closing = true;
              end("server");
              frame(0x8, payload.subarray(0, 2));
            }
            socket.end();
          } else if (opcode === 0x9) frame(0xa, payload);
          else if (opcode === 0x1 || opcode === 0x0) {
            fragments.push(payload);
            if (fin) {
              const text = Buffer.concat(fragments).toString("utf8");
              fragments = [];
              try {
                onText(text);
              } catch {}
            }
          }
        }
      };
      socket.on("data", (chunk) => {
        buffer = Buffer.concat([buffer, chunk]);
        parse();
      });
      socket.on("error", () => end("error"));
      socket.on("close", () => end(closing ? "client" : "server"));
      parse();
      resolve({
        status: 101,
        send: (text) => frame(0x1, Buffer.from(text)),
        /** A close frame (1000); the connection is destroyed if the server does not answer within 2 s. */
        close: () => {
          if (closing || socket.destroyed) return;
          closing = true;
          end("client");
          frame(0x8, Buffer.from([0x03, 0xe8]));
          setTimeout(() => socket.destroy(), 2_000).unref();
        },
        /** Gone without a close frame. */
        drop: () => {
          closing = true;
          end("client");
          socket.destroy();
        },
        ended,
      });
    });
    request.end();
  });
}

/** The counters of one pass; `fail` counts a failed request or stream by what failed. */
function soakCounters() {
  const failures = {};
  return {
    failures,
    fail(what) {
      failures[what] = (failures[what] ?? 0) + 1;
    },
    actions: {},
    sent: 0,
    accepted: 0,
    cancels: { cancelled: 0, late: 0 },
    retries: { accepted: 0, refused: 0 },
    retryingEvents: 0,
    streamsCut: 0,
    connections: { opened: 0, refused: 0, closedByClient: 0, droppedMidStream: 0, endedByServer: 0, events: 0 },
    wsPongs: 0,
  };
}

/** One pass of the soak's traffic, then its drain. Never throws. */
async function soakPass({ server, db, rooms }, pass) {
  const started = Date.now();
  const counters = soakCounters();
  const { fail } = counters;
  /** Client streams open now (prompt streams and the 150 connections). */
  const live = new Set();
  /** The newest prompt sent into each room, for the per-prompt streams. */
  const newest = new Map();
  const deadline = started + SOAK.trafficMs;
  let backlog = 0;
  let trafficDone = false;
  let promptsStarted = 0;
  /** Connections of the 150 under way now. */
  let connectionsOpen = 0;

  const pendingCount = async () => {
    const row = await db
      .prepare("SELECT count(*) AS n FROM messages WHERE role = 'user' AND status = 'pending'")
      .first();
    return row.n;
  };
  // How many prompts wait, read every 250 ms while the traffic runs.
  const watching = (async () => {
    while (!trafficDone) {
      backlog = await pendingCount().catch(() => backlog);
      await sleep(250);
    }
  })();

  const request = async (what, method, path, { token, body, headers = {} } = {}) => {
    try {
      const response = await fetch(`${server.url}${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(SOAK.requestMs),
      });
      const text = await response.text();
      let json = null;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {}
      return { status: response.status, body: json };
    } catch (error) {
      fail(`${what}: ${error?.name === "TimeoutError" ? "timed out" : "no answer"}`);
      return { status: 0, body: null };
    }
  };
  const expect = (what, answer, status) => {
    if (answer.status === status) return true;
    if (answer.status !== 0) fail(`${what}: ${answer.status}`);
    return false;
  };

  /**
   * An SSE request read until the server ends it, `onEvent` stops it (the client hangs up), or its time
   * runs out. Resolves with how it ended: "server", "client", "refused", "timed out" or "error".
   */
  const stream = async (what, path, { method = "GET", token, body, lifetimeMs = SOAK.requestMs }, onEvent) => {
    const controller = new AbortController();
    const handle = {};
    live.add(handle);
    let byClient = false;
    let reading;
    const hangUp = () => {
      byClient = true;
      if (reading) reading.stop();
      else controller.abort();
    };
    const timer = setTimeout(hangUp, lifetimeMs);
    try {
      const response = await fetch(`${server.url}${path}`, {
        method,
        headers: {
          Accept: "text/event-stream",
          Authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.any([controller.signal, AbortSignal.timeout(SOAK.requestMs)]),
      });
      if (response.status !== 200) {
        await response.arrayBuffer().catch(() => {});
        fail(`${what}: ${response.status}`);
        return "refused";
      }
      reading = readSse(response, (event) => onEvent(event, hangUp));
      if (byClient) reading.stop();
      await reading.done;
      return byClient ? "client" : "server";
    } catch (error) {
      if (byClient) return "client";
      fail(`${what}: ${error?.name === "TimeoutError" ? "timed out" : "stream error"}`);
      return error?.name === "TimeoutError" ? "timed out" : "error";
    } finally {
      clearTimeout(timer);
      controller.abort();
      live.delete(handle);
    }
  };

  /** Waits (long polls, at most 3 × 20 s) until the prompt has left pending; its status, or undefined. */
  const settled = async (room, promptId) => {
    for (let poll = 0; poll < 3; poll++) {
      const answer = await request(
        "GET …/message/:id?wait",
        "GET",
        `/api/chatroom/${room.roomId}/message/${promptId}?wait=20`,
        { token: room.token },
      );
      if (!expect("GET …/message/:id?wait", answer, 200)) return undefined;
      if (answer.body.prompt.status !== "pending") return answer.body.prompt.status;
    }
    fail("prompt still pending after 60 s of waits");
    return undefined;
  };
  const cancel = async (room, promptId) => {
    const answer = await request("POST …/cancel", "POST", `/api/chatroom/${room.roomId}/message/${promptId}/cancel`, {
      token: room.token,
    });
    if (answer.status === 200) counters.cancels.cancelled++;
    // Already settled: the reply was quicker than the stop button.
    else if (answer.status === 409) counters.cancels.late++;
    else expect("POST …/cancel", answer, 200);
    return answer.status === 200;
  };
  const retry = async (room, promptId) => {
    const answer = await request("POST …/retry", "POST", `/api/chatroom/${room.roomId}/message/${promptId}/retry`, {
      token: room.token,
    });
    if (answer.status === 202) counters.retries.accepted++;
    else if (answer.status === 409) counters.retries.refused++;
    else expect("POST …/retry", answer, 202);
  };
  const send = async (room, userMessage) => {
    counters.sent++;
    const answer = await request("POST …/message", "POST", `/api/chatroom/${room.roomId}/message`, {
      token: room.token,
      body: { userMessage },
    });
    if (!expect("POST …/message", answer, 202)) return undefined;
    counters.accepted++;
    newest.set(room, answer.body.prompt.id);
    return answer.body.prompt.id;
  };
  /** A send with Accept: text/event-stream; `onEvent(event, promptId, hangUp)`. */
  const sendStreamed = async (room, userMessage, onEvent = () => {}) => {
    counters.sent++;
    let promptId;
    const ended = await stream(
      "POST …/message (stream)",
      `/api/chatroom/${room.roomId}/message`,
      { method: "POST", token: room.token, body: { userMessage } },
      (event, hangUp) => {
        if (event.event === "prompt") {
          promptId = event.data.prompt.id;
          counters.accepted++;
          newest.set(room, promptId);
        }
        if (event.event === "retrying") counters.retryingEvents++;
        onEvent(event, promptId, hangUp);
      },
    );
    return { ended, promptId };
  };

  const promptAction = async (i) => {
    const kind = soakPromptKind(i);
    counters.actions[kind] = (counters.actions[kind] ?? 0) + 1;
    // Shifted by one room each round of 20, so every room sees every kind.
    const room = rooms[(i + Math.floor(i / SOAK_PROMPT_KINDS.length)) % rooms.length];
    const userMessage = `soak ${pass} #${i} ${SOAK_MARKERS[kind] ?? ""} how is the weather on the coast today?`;
    switch (kind) {
      case "plain":
      case "overloaded":
        await send(room, userMessage);
        return;
      case "poll": {
        const id = await send(room, userMessage);
        if (id) await settled(room, id);
        return;
      }
      case "streamed":
      case "drop":
        await sendStreamed(room, userMessage);
        return;
      case "cut": {
        // The client goes away in the middle of the reply; the reply is still written and stored.
        const { ended } = await sendStreamed(room, userMessage, (event, _id, hangUp) => {
          if (event.event === "delta") hangUp();
        });
        if (ended === "client") counters.streamsCut++;
        return;
      }
      case "cancel-stream": {
        // Stop pressed after the first words; the stream then ends with the cancelled reply.
        let cancelling;
        await sendStreamed(room, userMessage, (event, id) => {
          if (event.event === "delta" && !cancelling) cancelling = cancel(room, id);
        });
        await cancelling;
        return;
      }
      case "cancel-retry": {
        // Stopped while still queued, then sent again.
        const id = await send(room, userMessage);
        if (id && (await cancel(room, id))) await retry(room, id);
        return;
      }
      case "block-retry": {
        // Refused by the safety filters, retried once (and refused again).
        const id = await send(room, userMessage);
        if (!id) return;
        if ((await settled(room, id)) === "failed") {
          await retry(room, id);
          await settled(room, id);
        }
        return;
      }
    }
  };

  const connection = async (j) => {
    const kind = SOAK_CONNECTION_KINDS[j % SOAK_CONNECTION_KINDS.length];
    const room = rooms[(j * 7) % rooms.length];
    const lifetimeMs = Math.min(SOAK.connectionMs, 3_000 + (j % 7) * 2_000);
    const { connections } = counters;
    if (kind.startsWith("ws-")) {
      const ticket = await request("POST …/stream-ticket", "POST", `/api/chatroom/${room.roomId}/stream-ticket`, {
        token: room.token,
      });
      if (!expect("POST …/stream-ticket", ticket, 200)) {
        connections.refused++;
        return;
      }
      const handle = {};
      live.add(handle);
      try {
        let socket;
        let midStream = false;
        const opened = await openWebSocket(
          `${server.url}/api/chatroom/${room.roomId}/events?ticket=${encodeURIComponent(ticket.body.ticket)}`,
          (text) => {
            if (text === "pong") {
              counters.wsPongs++;
              return;
            }
            connections.events++;
            if (kind === "ws-drop" && !midStream && JSON.parse(text).event === "delta") {
              midStream = true;
              socket?.drop();
            }
          },
        );
        if (opened.status !== 101) {
          connections.refused++;
          fail(`GET …/events (WebSocket): ${opened.status || "no answer"}`);
          return;
        }
        socket = opened;
        connections.opened++;
        socket.send("ping");
        const timer = setTimeout(() => (kind === "ws-drop" ? socket.drop() : socket.close()), lifetimeMs);
        const endedBy = await Promise.race([socket.ended, sleep(SOAK.connectionMs + 5_000).then(() => "stuck")]);
        clearTimeout(timer);
        if (endedBy === "stuck") {
          socket.drop();
          fail("WebSocket did not end");
        } else if (endedBy === "server") connections.endedByServer++;
        else if (midStream) connections.droppedMidStream++;
        else connections.closedByClient++;
      } finally {
        live.delete(handle);
      }
      return;
    }
    const perPrompt = kind.startsWith("prompt-stream");
    const promptId = newest.get(room);
    if (perPrompt && !promptId) {
      fail("no prompt to stream yet");
      return;
    }
    const path = perPrompt
      ? `/api/chatroom/${room.roomId}/message/${promptId}/stream`
      : `/api/chatroom/${room.roomId}/events`;
    const dropOn = kind.endsWith("-drop") ? 1 + (j % 3) : Number.POSITIVE_INFINITY;
    let deltas = 0;
    let midStream = false;
    connections.opened++;
    const ended = await stream(
      perPrompt ? "GET …/message/:id/stream" : "GET …/events",
      path,
      { token: room.token, lifetimeMs },
      (event, hangUp) => {
        connections.events++;
        if (event.event === "delta" && ++deltas >= dropOn) {
          midStream = true;
          hangUp();
        }
      },
    );
    if (ended === "refused" || ended === "error" || ended === "timed out") {
      connections.opened--;
      connections.refused++;
    } else if (ended === "server") connections.endedByServer++;
    else if (midStream) connections.droppedMidStream++;
    else connections.closedByClient++;
  };

  // The prompts, 16 at a time; the connections beside them, opened as the prompts progress.
  let nextPrompt = 0;
  const promptWorker = async () => {
    while (nextPrompt < SOAK.prompts && Date.now() < deadline) {
      while (backlog >= SOAK.maxBacklog && Date.now() < deadline) await sleep(50);
      const i = nextPrompt++;
      promptsStarted = i + 1;
      await promptAction(i).catch((error) => fail(`prompt action threw: ${error?.message ?? error}`));
    }
  };
  const connectionsRunning = [];
  const opener = (async () => {
    for (let j = 0; j < SOAK.connections && Date.now() < deadline; j++) {
      while (
        (promptsStarted < (j * SOAK.prompts) / SOAK.connections || connectionsOpen >= SOAK.maxOpenConnections) &&
        promptsStarted < SOAK.prompts &&
        Date.now() < deadline
      )
        await sleep(20);
      connectionsOpen++;
      connectionsRunning.push(
        connection(j)
          .catch((error) => fail(`connection threw: ${error?.message ?? error}`))
          .finally(() => connectionsOpen--),
      );
    }
  })();
  await Promise.all(Array.from({ length: SOAK.concurrency }, promptWorker));
  await opener;
  await Promise.all(connectionsRunning);
  trafficDone = true;
  await watching;
  const trafficSeconds = (Date.now() - started) / 1000;

  // The drain: every prompt settled and every client stream closed (bounded), then a settle pause.
  const drainStarted = Date.now();
  let pending = -1;
  while (Date.now() - drainStarted < SOAK.drainMs) {
    pending = await pendingCount().catch(() => -1);
    if (pending === 0 && live.size === 0) break;
    await sleep(250);
  }
  if (pending !== 0) fail(`drain: ${pending === -1 ? "pending count unreadable" : `${pending} prompts still pending`}`);
  if (live.size > 0) fail(`drain: ${live.size} client streams still open`);
  const drainSeconds = (Date.now() - drainStarted) / 1000;
  await sleep(SOAK.settleMs);
  // A full GC in every isolate (the heap snapshots'), so that the RSS below holds no garbage that a later
  // collection would have freed anyway: what remains is live, or kept by the allocators.
  const liveHeaps = await collectEveryIsolate(server.inspectorPort).catch(() => ({}));
  const liveHeapMiB = liveHeaps["core:user:"] ?? null;
  await sleep(2_000);

  const statuses = Object.fromEntries(
    (
      await db
        .prepare("SELECT status, count(*) AS n FROM messages WHERE role = 'user' AND content LIKE ? GROUP BY status")
        .bind(`soak ${pass} #%`)
        .all()
        .catch(() => ({ results: [] }))
    ).results.map((row) => [row.status, row.n]),
  );
  const result = {
    pass,
    rssMiB: rssMiB(server.pids),
    liveHeapMiB,
    liveHeapsMiB: liveHeaps,
    openTcpConnections: tcpConnectionsTo(Number(new URL(server.url).port)),
    seconds: Number(((Date.now() - started) / 1000).toFixed(1)),
    trafficSeconds: Number(trafficSeconds.toFixed(1)),
    drainSeconds: Number(drainSeconds.toFixed(1)),
    promptsNotSent: SOAK.prompts - nextPrompt,
    sent: counters.sent,
    accepted: counters.accepted,
    settled: (statuses.completed ?? 0) + (statuses.failed ?? 0) + (statuses.cancelled ?? 0),
    statuses,
    actions: counters.actions,
    cancels: counters.cancels,
    retries: counters.retries,
    retryingEvents: counters.retryingEvents,
    streamsCut: counters.streamsCut,
    connections: counters.connections,
    wsPongs: counters.wsPongs,
    failed: Object.values(counters.failures).reduce((a, b) => a + b, 0),
    failures: counters.failures,
  };
  log(
    `  pass ${pass}: ${result.settled} of ${result.accepted} prompts settled, ${result.connections.opened} connections, ${result.failed} failed requests, ${result.seconds} s; workerd RSS ${result.rssMiB} MiB, live JS heap ${result.liveHeapMiB} MiB`,
  );
  return result;
}

/** The soak on a fresh consuming Worker: fixtures, then SOAK.passes passes. Never throws. */
async function soak(scriptPath) {
  const started = Date.now();
  let gemini;
  let server;
  try {
    gemini = await startGeminiStub({ chunkGapMs: 20 });
    const inspectorPort = await freePort();
    server = await serveWorker(scriptPath, { geminiUrl: gemini.url, consume: true, inspectorPort });
    const db = await migrate(server.mf);
    const api = client(server.url);
    const rooms = [];
    for (let u = 0; u < SOAK.users; u++) {
      const user = await api.user();
      await api.makePro(user.id);
      for (let r = 0; r < SOAK.roomsPerUser; r++) rooms.push(await api.withRoom(user, `Soak ${r}`));
    }
    if (rooms.some((room) => !room.roomId)) throw new Error("the soak's chatrooms could not be created");
    const baselineMiB = rssMiB(server.pids);
    const passes = [];
    for (let pass = 1; pass <= SOAK.passes; pass++)
      passes.push(await soakPass({ server: { ...server, inspectorPort }, db, rooms }, pass));
    const [first, second] = passes.map((p) => p.rssMiB);
    const [firstLive, secondLive] = passes.map((p) => p.liveHeapMiB);
    return {
      pids: server.pids.length,
      baselineMiB,
      rssMiB: [first, second],
      growthMiB: first === null || second === null ? null : Number((second - first).toFixed(1)),
      liveHeapMiB: [firstLive, secondLive],
      liveHeapGrowthMiB: firstLive === null || secondLive === null ? null : Number((secondLive - firstLive).toFixed(1)),
      seconds: Math.round((Date.now() - started) / 1000),
      passes,
    };
  } catch (error) {
    log(`  soak failed: ${error?.message ?? error}`);
    return { error: String(error?.message ?? error), seconds: Math.round((Date.now() - started) / 1000) };
  } finally {
    await Promise.all([server?.mf.dispose(), gemini?.close()]);
  }
}

const treeLogLine = `long chatroom: ${TREE.mainLength} messages on the active branch and ${TREE.sideBranches} side branches against ${TREE.shortLength}; page reads and branch switches`;
const searchLogLine = `search: ${SEARCH.users} users of ${SEARCH.messagesPerUser} messages (alone, ${SEARCH.midUsers} users, ${SEARCH.users}); then the export of ${SEARCH.exportMessages} and ${SEARCH.exportSmallMessages} messages`;
const soakLogLine = `soak: ${SOAK.passes} passes of ${SOAK.prompts} prompts and ${SOAK.connections} stream connections, each drained; workerd RSS after each drain`;

/** A soak pass's live JS heaps of every isolate, summed. MiB. */
const heapSum = (pass) =>
  Object.values(pass.liveHeapsMiB ?? {})
    .reduce((total, mib) => total + mib, 0)
    .toFixed(1);

/** The soak as one paragraph of the results. */
function soakSummary(result) {
  if (result.error) return `**Soak**: did not run to the end (${result.error}).`;
  const [first, second] = result.passes;
  const sum = (pick) => result.passes.reduce((total, p) => total + pick(p), 0);
  const connections = (p) => p.connections;
  return [
    `**Soak** (the same traffic twice on one Worker: ${SOAK.prompts} prompts from ${SOAK.users} Pro users in ${SOAK.users * SOAK.roomsPerUser} chatrooms — plain, long-polled, streamed, cut by the client mid-reply, cancelled mid-stream or while queued and retried, refused by the stub and retried, Gemini's stream cut and retried by the queue, overloaded — and ${SOAK.connections} stream connections (\`…/events\` over SSE and WebSocket, per-prompt \`…/stream\`), some dropped by the client mid-stream; each pass drained until no prompt is pending and every connection is closed, then ${SOAK.settleMs / 1000} s, then a full GC in every isolate of the process — the Worker's, which also hosts the hubs, and Miniflare's D1, KV, Queues and cache simulators — through the inspector's heap snapshots, so that garbage not yet collected is not counted):`,
    `workerd RSS ${result.baselineMiB} MiB before, ${first.rssMiB} MiB after the first drain, ${second.rssMiB} MiB after the second: **growth ${result.growthMiB} MiB** (target ≤ 64 MiB${result.growthMiB !== null && result.growthMiB <= 64 ? "" : ": OVER"}).`,
    `The Worker's live JS heap after each drain: **${first.liveHeapMiB} and ${second.liveHeapMiB} MiB**; every isolate's together: ${heapSum(first)} and ${heapSum(second)} MiB. What grows is native: the local databases' page caches and the memory allocators keep.`,
    `Prompts settled ${first.settled} / ${second.settled} of ${first.accepted} / ${second.accepted} accepted (${sum((p) => p.cancels.cancelled)} cancelled by the client, ${sum((p) => p.retries.accepted)} retried, ${sum((p) => p.streamsCut)} streams cut); connections ${sum((p) => connections(p).opened)} opened, ${sum((p) => connections(p).droppedMidStream)} dropped mid-stream; ${sum((p) => p.failed)} failed requests; ${first.seconds} s and ${second.seconds} s per pass (${result.seconds} s with the fixtures).`,
  ].join(" ");
}

async function main() {
  log("building the Worker (wrangler deploy --dry-run)");
  const plain = build(`${BUILD}/worker`);
  if (ONLY === "soak") {
    log(soakLogLine);
    const result = await soak(plain);
    console.log(`\n${JSON.stringify(result, null, 2)}\n\n${soakSummary(result)}\n`);
    return;
  }
  if (ONLY === "cold") {
    log(coldLogLine);
    const cold = await coldRequests(plain);
    console.table(cold);
    console.log(`\n${coldSummary(cold)}\n`);
    return;
  }
  const instrumented = build(`${BUILD}/instrumented`, "bench/instrumented.ts");
  if (ONLY === "floor")
    return console.table([...(await floorShares(instrumented))].map(([name, f]) => ({ name, ...f })));
  if (ONLY === "profile") return profileHotReads(instrumented);
  if (ONLY === "startup") return console.log(startup());
  if (ONLY === "tree") {
    log(treeLogLine);
    const tree = await longRoom(instrumented);
    console.log(`\n${JSON.stringify(tree, null, 2)}\n\n${longRoomSummary(tree)}\n`);
    return;
  }
  if (ONLY === "search") {
    log(searchLogLine);
    const result = await searchAndExport(instrumented);
    console.log(`\n${JSON.stringify(result, null, 2)}\n\n${searchSummary(result)}\n`);
    return;
  }
  if (ONLY) throw new Error(`--only takes floor, profile, startup, cold, soak, tree or search, not ${ONLY}`);
  const bundle = readFileSync(plain);
  const size = { raw: bundle.length / 1024, gzip: gzipSync(bundle, { level: 9 }).length / 1024 };

  const gemini = await startGeminiStub();
  const trivial = await serve({ script: 'export default { fetch: () => new Response("ok") }' });
  const counted = await serveWorker(instrumented, { geminiUrl: gemini.url, consume: false });
  const real = await serveWorker(plain, { geminiUrl: gemini.url, consume: false });
  const rows = [];
  const loadRows = [];
  try {
    const countedDb = await migrate(counted.mf);
    const realDb = await migrate(real.mf);

    log("counting D1 round trips and KV operations per request");
    const countedApi = client(counted.url);
    const countFixtures = await countedApi.fixtures();
    const counts = new Map();
    for (const endpoint of endpoints(countedApi, countFixtures, countedDb)) {
      if (endpoint.name === "GET /api/chatroom (cached)") {
        await countedApi.request("GET", "/api/chatroom", { token: countFixtures.basic.token });
        await countedApi.request("GET", "/api/chatroom", { token: countFixtures.basic.token });
      }
      const input = endpoint.prepare ? await endpoint.prepare() : undefined;
      const response = await endpoint.call(input);
      counts.set(endpoint.name, {
        d1: Number(response.headers.get("X-Bench-D1")),
        kv: Number(response.headers.get("X-Bench-KV")),
      });
    }

    log("measuring CPU per request (workerd process CPU time)");
    const trivialCpu = await cpuPerCall(trivial, {
      name: "trivial",
      calls: 200,
      call: () => fetch(trivial.url).then(async (r) => ({ status: r.status, body: await r.text() })),
    });
    const api = client(real.url);
    const fixtures = await api.fixtures();
    const { token, roomId } = fixtures.basic;
    for (const endpoint of endpoints(api, fixtures, realDb)) {
      const cpu = await cpuPerCall(real, endpoint);
      rows.push({ name: endpoint.name, ...counts.get(endpoint.name), cpu, ratio: cpu / trivialCpu });
      log(`  ${endpoint.name}: ${cpu.toFixed(2)} ms CPU`);
    }
    rows.push({ name: "trivial Worker (floor)", d1: 0, kv: 0, cpu: trivialCpu, ratio: 1 });

    log(`load: ${CONNECTIONS} connections, ${LOAD_SECONDS} s × ${RUNS} runs per endpoint`);
    const auth = { Authorization: `Bearer ${token}` };
    await api.request("GET", "/api/chatroom", { token });
    await api.request("GET", "/api/chatroom", { token });
    const floor = await load(`${trivial.url}/`, {});
    for (const [name, path, headers] of [
      ["GET / (health)", "/", {}],
      ["GET /api/user/me", "/api/user/me", auth],
      ["GET /api/chatroom (cached)", "/api/chatroom", auth],
      ["GET /api/chatroom/:id", `/api/chatroom/${roomId}`, auth],
    ]) {
      const result = await load(`${real.url}${path}`, headers);
      loadRows.push({ name, ...result, share: result.rps / floor.rps });
      log(`  ${name}: ${result.rps.toFixed(0)} req/s`);
    }
    loadRows.push({ name: "trivial Worker (floor)", ...floor, share: 1 });
  } finally {
    await Promise.all([trivial.mf.dispose(), counted.mf.dispose(), real.mf.dispose(), gemini.close()]);
  }

  log("queue drain: 100 prompts from 10 Pro users, Gemini stub answering after 500 ms");
  const drain = await queueDrain(plain);

  log(`binding floor: ${HOT_READS.length} hot reads against the same binding calls alone, ${CONNECTIONS} connections`);
  const floors = await floorShares(instrumented);
  log(`latency model: each binding call delayed (${JSON.stringify(LATENCY_MODEL)}), p50 of 50 calls per endpoint`);
  const modelled = await latencyModel(instrumented);
  log("KV write budget: a burst of 20 prompts into one chatroom");
  const burst = await kvBurst(instrumented);
  log(treeLogLine);
  const tree = await longRoom(instrumented);
  log(searchLogLine);
  const searched = await searchAndExport(instrumented);
  log("startup: wrangler check startup (global-scope CPU of the bundle)");
  const boot = startup();
  log(coldLogLine);
  const cold = await coldRequests(plain);

  log("live replies: 24 streamed prompts, then 10 prompts watched by 1 and by 50 subscribers");
  const live = await liveReplies(plain);

  log(soakLogLine);
  const soaked = await soak(plain);
  const ms = (figure) => `${figure.p50} / ${figure.p95}`;

  const today = new Date().toISOString().slice(0, 10);
  const table = [
    `Measured ${today} on ${process.platform} ${process.arch}, ${(await import("node:os")).cpus().length} cores, Node ${process.version}; medians of ${RUNS} runs.`,
    "",
    `**Bundle** (\`wrangler deploy --dry-run\`): ${size.raw.toFixed(0)} KiB raw, **${size.gzip.toFixed(0)} KiB gzip** (budget ${BUDGET_GZIP_KIB} KiB: ${size.gzip <= BUDGET_GZIP_KIB ? "within" : "OVER"}).`,
    "",
    `**Queue drain**: 100 prompts from 10 Pro users, Gemini answering after 500 ms, from the first send until every reply is stored (target < 3 s; the Express + BullMQ original with two workers needs about 25 s):`,
    `- batches handed to the consumer concurrently, as Cloudflare Queues runs consumer invocations: **${drain.concurrent.toFixed(2)} s**;`,
    `- through the local Queues broker, which dispatches one batch of 10 at a time: **${drain.local.toFixed(2)} s** (10 batches × 500 ms).`,
    "",
    `**Live replies** (Gemini stub: 5–8 chunks 40 ms apart; \`max_batch_timeout = 0\`; ${live.timed.count} prompts after 2 warm-up ones; p50 / p95 ms):`,
    "",
    "| | from the send | after the stub wrote the matching chunk (our path) |",
    "|---|---:|---:|",
    `| first \`delta\` at the client | ${ms(live.timed.firstDelta)} | **${ms(live.timed.firstDeltaOverhead)}** (target ≤ 300) |`,
    `| \`reply\` at the client (reply stored) | ${ms(live.timed.stored)} | ${ms(live.timed.storedOverhead)} |`,
    `| first \`delta\` with \`max_batch_timeout = 1\` (${live.batched.count} prompts) | ${ms(live.batched.firstDelta)} | ${ms(live.batched.firstDeltaOverhead)} |`,
    "",
    `**Fan-out** on \`GET …/events\` (${live.fifty.prompts} prompts, ${live.fifty.deltas} deltas): with 1 subscriber the first delta arrives ${ms(live.single)} ms after the stub's first chunk; with ${live.fifty.subscribers} subscribers ${ms(live.fifty)} ms (added: ${live.fifty.p50 - live.single.p50} / ${live.fifty.p95 - live.single.p95} ms). Lost events: **${live.fifty.lost}**, out of order: **${live.fifty.reordered}**, prompts whose deltas do not join into the stored reply: **${live.fifty.wrongText}**.`,
    "",
    soakSummary(soaked),
    "",
    longRoomSummary(tree),
    "",
    searchSummary(searched),
    "",
    `**Startup** (\`wrangler check startup\`, median of ${boot.runs.length}): **${boot.median.toFixed(1)} ms** global-scope CPU (budget 25 ms${boot.median <= 25 ? "" : `: over by ${(boot.median - 25).toFixed(1)} ms`}); ${boot.median < boot.libraries ? `nothing but the entry and the Durable Object class runs at startup: the libraries (${boot.libraries.toFixed(1)} ms on their own, \`bench/startup-floor.ts\`) and each part of the API's routes load with the first request for that part (src/index.ts)` : `the libraries it loads take ${boot.libraries.toFixed(1)} ms on their own (\`bench/startup-floor.ts\`), so our own code takes ${(boot.median - boot.libraries).toFixed(1)} ms`}. ${coldSummary(cold)}`,
    "",
    `**KV write budget**: a burst of 20 prompts into one chatroom (and their 20 replies) wrote the busiest key **${burst.max}** times within one second (\`${burst.key}\`; KV takes about 1 write per second per key). A prompt with its reply stores about ${burst.bytesPerPrompt} bytes of row data in D1 (the stub's replies are short; indexes come on top).`,
    "",
    `| Hot read, ${CONNECTIONS} connections (instrumented build) | requests/s | its binding floor, requests/s | share of the floor (target ≥ 85%) |`,
    "|---|---:|---:|---:|",
    ...[...floors].map(
      ([name, f]) => `| ${name} | ${f.ours.toFixed(0)} | ${f.floor.toFixed(0)} | **${(f.share * 100).toFixed(0)}%** |`,
    ),
    "",
    "| Endpoint | sequential trips | total trips | D1 | KV ops | p50 ms under the latency model | CPU ms/request | × trivial Worker |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map(
      (r) =>
        `| ${r.name} | ${modelled.get(r.name)?.sequentialTrips ?? "–"} | ${modelled.get(r.name)?.totalTrips ?? "–"} | ${r.d1} | ${r.kv} | ${modelled.get(r.name)?.p50.toFixed(0) ?? "–"} | ${r.cpu.toFixed(2)} | ${r.ratio.toFixed(1)}× |`,
    ),
    "",
    `Latency model (each binding call delayed by this before it runs; figures as planning assumptions): ${LATENCY_SOURCES.map((s) => `${s.kind} ${s.ms} ms (${s.source})`).join("; ")}.`,
    "",
    `| Hot read, ${CONNECTIONS} connections | requests/s | p50 ms | p99 ms | share of trivial Worker's throughput |`,
    "|---|---:|---:|---:|---:|",
    ...loadRows.map(
      (r) => `| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${(r.share * 100).toFixed(0)}% |`,
    ),
    "",
    "CPU is the workerd process's own CPU time per request (from /proc), including local D1 (SQLite) and KV work that runs on other machines in production; signup and login are dominated by PBKDF2 (100 000 iterations).",
  ].join("\n");
  console.log(`\n${table}\n`);
  if (!WRITE) {
    log(
      "done (tables printed only; `npm run bench -- --write` updates bench/results.md, bench/results.json and docs/benchmarks.md)",
    );
    return;
  }
  writeFileSync("bench/results.md", `# Benchmark results\n\nReproduce with \`npm run bench\`.\n\n${table}\n`);
  const results = {
    measuredAt: today,
    machine: `${process.platform} ${process.arch}, Node ${process.version}`,
    latencyModelMs: LATENCY_MODEL,
    startupCpuMs: Number(boot.median.toFixed(1)),
    startupLibrariesCpuMs: Number(boot.libraries.toFixed(1)),
    // What the first request to each part pays over the same request made again, in a fresh Worker.
    coldRequestCpuMs: Object.fromEntries(COLD_PARTS.map(({ part }) => [part, cold[part].extra])),
    coldRequestChatAfterAccountCpuMs: cold.chatAfterAccount.extra,
    coldRequestTrivialWorkerCpuMs: cold.trivial.extra,
    maxKvWritesPerKeyPerSecond: burst.max,
    d1BytesPerPromptWithReply: burst.bytesPerPrompt,
    firstDeltaOverheadMsP50: live.timed.firstDeltaOverhead.p50,
    soakRssGrowthMiB: soaked.growthMiB ?? null,
    soakRssMiB: soaked.rssMiB ?? null,
    soakWorkerLiveHeapMiB: soaked.liveHeapMiB ?? null,
    soakPromptsSettled: soaked.passes?.map((p) => p.settled) ?? null,
    soakPromptsAccepted: soaked.passes?.map((p) => p.accepted) ?? null,
    soakConnections: soaked.passes?.map((p) => p.connections.opened) ?? null,
    soakFailedRequests: soaked.passes?.map((p) => p.failed) ?? null,
    soakSecondsPerPass: soaked.passes?.map((p) => p.seconds) ?? null,
    soakSeconds: soaked.seconds,
    longRoomPageSlowdown: Number(tree.slowdown.toFixed(2)),
    longRoomPageMsP50: Object.fromEntries(
      Object.entries(tree.pages).map(([read, page]) => [
        read,
        { long: Number(page.longMs.toFixed(1)), short: Number(page.shortMs.toFixed(1)) },
      ]),
    ),
    branchSwitchP50Ms: Number(tree.switchMs.toFixed(1)),
    // null: the switch gave no answer within TREE.farSwitchTimeoutMs (or was not measured after one that did not).
    branchSwitch1000BackP50Ms: tree.farSwitchMs === null ? null : Number(tree.farSwitchMs.toFixed(1)),
    branchSwitchFromRootP50Ms: tree.rootSwitchMs === null ? null : Number(tree.rootSwitchMs.toFixed(1)),
    searchCommonWordP50Ms: Number(searched.search.stages.at(-1).commonMs.toFixed(1)),
    searchRareWordP50Ms: Number(searched.search.stages.at(-1).rareMs.toFixed(1)),
    searchD1RoundTrips: Math.max(...Object.values(searched.search.stages.at(-1).d1RoundTrips)),
    // The same two searches by how many users (of SEARCH.messagesPerUser messages each) the database holds.
    searchP50MsByUsers: Object.fromEntries(
      searched.search.stages.map((s) => [
        s.users,
        { common: Number(s.commonMs.toFixed(1)), rare: Number(s.rareMs.toFixed(1)) },
      ]),
    ),
    searchSeedSeconds: searched.search.seedSeconds,
    exportMessagesPerSecond: searched.export.big.messagesPerSecond,
    // workerd's RSS at its peak during the account's first export over the RSS just before (the small one first).
    exportRssGrowthMiB: {
      [searched.export.big.messages]: searched.export.big.rssGrowthMiB,
      [searched.export.small.messages]: searched.export.small.rssGrowthMiB,
    },
    // The Worker's live JS heap (after a full GC) in the middle of the big account's export, over before it.
    exportLiveHeapGrowthMiB: searched.export.paused.liveGrowthMiB,
    endpoints: Object.fromEntries(
      rows
        .filter((r) => !r.name.startsWith("trivial"))
        .map((r) => [
          r.name,
          {
            sequentialTrips: modelled.get(r.name)?.sequentialTrips,
            totalTrips: modelled.get(r.name)?.totalTrips,
            modelP50Ms: Number((modelled.get(r.name)?.p50 ?? 0).toFixed(1)),
            d1Statements: modelled.get(r.name)?.d1Statements,
            cpuMs: Number(r.cpu.toFixed(2)),
            ...(floors.has(r.name) ? { floorShare: Number(floors.get(r.name).share.toFixed(3)) } : {}),
            ...(loadRows.find((l) => l.name === r.name)
              ? { requestsPerSecond: Math.round(loadRows.find((l) => l.name === r.name).rps) }
              : {}),
          },
        ]),
    ),
  };
  writeFileSync("bench/results.json", `${JSON.stringify(results, null, 2)}\n`);
  // In the repository's own format, so `npm run lint` passes on what the bench wrote.
  spawnSync("biome", ["format", "--write", "bench/results.json"], { stdio: "ignore" });
  const page = readFileSync(RESULTS_PAGE, "utf8");
  const marked = /<!-- bench:start -->[\s\S]*<!-- bench:end -->/;
  if (!marked.test(page)) throw new Error(`${RESULTS_PAGE} has no <!-- bench:start --> … <!-- bench:end --> markers`);
  writeFileSync(RESULTS_PAGE, page.replace(marked, `<!-- bench:start -->\n${table}\n<!-- bench:end -->`));
  log(`done in ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
}

await main();
