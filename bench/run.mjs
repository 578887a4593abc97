// npm run bench — measures the built Worker the way its users feel it and prints one table
// (also written to bench/results.md and the README's Performance section).
//
// The Worker is served by Miniflare directly: the `wrangler dev` proxy tops out near 1 000 requests/s on
// a small machine and would measure itself. All traffic goes to 127.0.0.1. Figures are medians of
// several runs, each compared with a trivial Worker measured in the same run.
import { spawnSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import autocannon from "autocannon";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { freePort } from "../tools/local-stack.mjs";
import { startGeminiStub } from "../tools/stubs/gemini.mjs";

const BUILD = "bench/.build";
const RUNS = 3;
const LOAD_SECONDS = 3;
const CONNECTIONS = 32;
const BUDGET_GZIP_KIB = 250;
const COMPAT_DATE = /compatibility_date\s*=\s*"([^"]+)"/.exec(readFileSync("wrangler.toml", "utf8"))?.[1];
const WEBHOOK_SECRET = "whsec_bench";
const startedAt = Date.now();

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
const log = (message) => console.log(`[bench ${((Date.now() - startedAt) / 1000).toFixed(0)}s] ${message}`);

function build(outdir, entry) {
  const result = spawnSync("wrangler", ["deploy", "--dry-run", "--outdir", outdir, ...(entry ? [entry] : [])], {
    encoding: "utf8",
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" },
  });
  if (result.status !== 0) throw new Error(`wrangler build failed:\n${result.stderr}`);
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
    convertV4MiniflareOptions({ host: "127.0.0.1", port, modules: true, compatibilityDate: COMPAT_DATE, ...options }),
  );
  const url = await mf.ready;
  const pids = workerdPids().filter((pid) => !before.has(pid));
  return { mf, url: url.href.replace(/\/$/, ""), pids };
}

function serveWorker(scriptPath, { geminiUrl, consume }) {
  return serve({
    scriptPath,
    d1Databases: ["DB"],
    kvNamespaces: ["CACHE"],
    durableObjects: { CHATROOM_HUB: { className: "ChatroomHub", useSQLite: true } },
    queueProducers: { PROMPT_QUEUE: { queueName: "gemini-prompts" } },
    ...(consume
      ? { queueConsumers: { "gemini-prompts": { maxBatchSize: 10, maxBatchTimeout: 1, maxRetries: 2 } } }
      : {}),
    bindings: {
      OTP_DELIVERY: "response",
      OTP_WEBHOOK_URL: "",
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
      const { payload, header } = proEvent(userId);
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

function signedEvent(type, object) {
  const event = {
    id: `evt_bench_${randomBytes(8).toString("hex")}`,
    object: "event",
    created: Math.floor(Date.now() / 1000),
    type,
    data: { object },
  };
  const payload = JSON.stringify(event);
  const t = Math.floor(Date.now() / 1000);
  const signature = createHmac("sha256", WEBHOOK_SECRET).update(`${t}.${payload}`).digest("hex");
  return { payload, header: `t=${t},v1=${signature}` };
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

/** Each endpoint: how to prepare one call (untimed) and make it (timed). */
function endpoints(api, { basic, pro }) {
  const { token, roomId } = basic;
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

async function load(url, headers) {
  const runs = [];
  for (let run = 0; run < RUNS; run++) {
    const result = await autocannon({ url, connections: CONNECTIONS, duration: LOAD_SECONDS, headers });
    if (result.non2xx > 0 || result.errors > 0)
      throw new Error(`load on ${url}: ${result.non2xx} non-2xx, ${result.errors} errors`);
    runs.push(result);
  }
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

async function main() {
  log("building the Worker (wrangler deploy --dry-run)");
  const plain = build(`${BUILD}/worker`);
  const instrumented = build(`${BUILD}/instrumented`, "bench/instrumented.ts");
  const bundle = readFileSync(plain);
  const size = { raw: bundle.length / 1024, gzip: gzipSync(bundle, { level: 9 }).length / 1024 };

  const gemini = await startGeminiStub();
  const trivial = await serve({ script: 'export default { fetch: () => new Response("ok") }' });
  const counted = await serveWorker(instrumented, { geminiUrl: gemini.url, consume: false });
  const real = await serveWorker(plain, { geminiUrl: gemini.url, consume: false });
  const rows = [];
  const loadRows = [];
  try {
    await migrate(counted.mf);
    await migrate(real.mf);

    log("counting D1 round trips and KV operations per request");
    const countedApi = client(counted.url);
    const countFixtures = await countedApi.fixtures();
    const counts = new Map();
    for (const endpoint of endpoints(countedApi, countFixtures)) {
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
    for (const endpoint of endpoints(api, fixtures)) {
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
    "| Endpoint | D1 round trips | KV ops | CPU ms/request | × trivial Worker |",
    "|---|---:|---:|---:|---:|",
    ...rows.map((r) => `| ${r.name} | ${r.d1} | ${r.kv} | ${r.cpu.toFixed(2)} | ${r.ratio.toFixed(1)}× |`),
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
  writeFileSync("bench/results.md", `# Benchmark results\n\nReproduce with \`npm run bench\`.\n\n${table}\n`);
  const readme = readFileSync("README.md", "utf8");
  const marked = /<!-- bench:start -->[\s\S]*<!-- bench:end -->/;
  if (marked.test(readme))
    writeFileSync("README.md", readme.replace(marked, `<!-- bench:start -->\n${table}\n<!-- bench:end -->`));
  log(`done in ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
}

await main();
