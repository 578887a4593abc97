import {
  createExecutionContext,
  createMessageBatch,
  env,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { expect, vi } from "vitest";
import worker from "../src/index";
import { expectDocumented } from "./documented";

export type CallOptions = {
  body?: unknown;
  /** Sent as-is, for malformed or oversized bodies. */
  rawBody?: BodyInit;
  token?: string;
  headers?: Record<string, string>;
  env?: Env;
};

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers field by field.
export type CallResult = { status: number; headers: Headers; body: any };

/**
 * Calls the real Worker entry (middleware, onError and all), checks the answer against the OpenAPI
 * document, and parses the JSON answer.
 */
export async function call(method: string, path: string, options: CallOptions = {}): Promise<CallResult> {
  const headers = new Headers(options.headers);
  let body = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  }
  if (options.token) headers.set("Authorization", `Bearer ${options.token}`);
  const ctx = createExecutionContext();
  const response = await worker.fetch(
    new Request(`http://localhost${path}`, { method, headers, body }),
    options.env ?? env,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  const text = await response.text();
  await expectDocumented(method, path, { status: response.status, headers: response.headers, text });
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: response.status, headers: response.headers, body: parsed };
}

let phoneCounter = 0;

/**
 * A phone number no other test uses, without + and country code (as the original's clients send it), so
 * DEFAULT_CALLING_CODE (91 in vitest.config.ts) is exercised too; `e164()` gives the number stored.
 */
export function uniquePhone(): string {
  phoneCounter += 1;
  const random = Math.floor(Math.random() * 1e6)
    .toString()
    .padStart(6, "0");
  return `9${random}${String(phoneCounter).padStart(4, "0")}`;
}

/** The number the API stores for a `uniquePhone()`, with the test pool's DEFAULT_CALLING_CODE. */
export const e164 = (national: string) => `+91${national}`;

export const PASSWORD = "s3cretPass";

export async function signUp(overrides: Record<string, unknown> = {}) {
  const phoneNumber = uniquePhone();
  const res = await call("POST", "/api/auth/signup", { body: { phoneNumber, password: PASSWORD, ...overrides } });
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { phoneNumber: e164(phoneNumber), user: res.body.user };
}

export async function requestOtp(phoneNumber: string, path = "/api/auth/send-otp") {
  const res = await call("POST", path, { body: { phoneNumber } });
  if (res.status !== 200) throw new Error(`OTP request failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.otp as string;
}

/** A signed-up, phone-verified user with a token. */
export async function verifiedUser() {
  const { phoneNumber } = await signUp();
  const otp = await requestOtp(phoneNumber);
  const res = await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp } });
  if (res.status !== 200) throw new Error(`verify failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { phoneNumber, token: res.body.authToken as string, user: res.body.user };
}

/** Moves every OTP of this phone back in time, as if `ms` had passed. */
export async function ageOtps(phoneNumber: string, ms: number) {
  await env.DB.prepare(
    "UPDATE otps SET created_at = created_at - ?1, expires_at = expires_at - ?1 WHERE user_id = (SELECT id FROM users WHERE phone_number = ?2)",
  )
    .bind(ms, phoneNumber)
    .run();
}

/** Asserts the contract's error envelope: status, code, a message, and nothing internal. */
export function expectError(res: CallResult, status: number, code: string) {
  expect({ status: res.status, success: res.body?.success, code: res.body?.error?.code }).toEqual({
    status,
    success: false,
    code,
  });
  expect(typeof res.body.message).toBe("string");
  expect(JSON.stringify(res.body)).not.toMatch(/stack|at .*\(|SQLITE|D1_ERROR/);
}

/**
 * A 401 UNAUTHORIZED whose message says why (`because`), with the RFC 6750 challenge: `error="invalid_token"`
 * and the message as its description when a token or ticket was sent, a bare realm when none was.
 */
export function expectUnauthorized(res: CallResult, because: RegExp, options: { tokenSent?: boolean } = {}) {
  expectError(res, 401, "UNAUTHORIZED");
  expect(res.body.message).toMatch(because);
  expect(res.headers.get("WWW-Authenticate")).toBe(
    options.tokenSent === false
      ? 'Bearer realm="api"'
      : `Bearer error="invalid_token", error_description="${res.body.message}"`,
  );
}

/**
 * Wraps a D1 binding to count round trips: every executed statement and every batch is one (a network
 * hop in production). For the tests' round-trip assertions.
 */
export function countingD1(d1: D1Database, counter = { roundTrips: 0 }) {
  const originals = new WeakMap<object, D1PreparedStatement>();
  const wrap = (statement: D1PreparedStatement): D1PreparedStatement => {
    const proxy = new Proxy(statement, {
      get(target, property) {
        if (property === "bind") return (...values: unknown[]) => wrap(target.bind(...values));
        if (property === "first" || property === "run" || property === "all" || property === "raw") {
          return (...args: unknown[]) => {
            counter.roundTrips += 1;
            return (target[property] as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    originals.set(proxy, statement);
    return proxy;
  };
  // A D1 database or one of its sessions (withSession): both prepare and batch the same way.
  const wrapDatabase = <T extends object>(database: T): T =>
    new Proxy(database, {
      get(target, property) {
        const d1Like = target as unknown as D1Database;
        if (property === "withSession")
          return (...args: unknown[]) =>
            wrapDatabase((d1Like.withSession as (...a: unknown[]) => object).apply(target, args));
        if (property === "prepare") return (query: string) => wrap(d1Like.prepare(query));
        if (property === "batch") {
          return (statements: D1PreparedStatement[]) => {
            counter.roundTrips += 1;
            return d1Like.batch(statements.map((statement) => originals.get(statement) ?? statement));
          };
        }
        if (property === "exec") {
          return (query: string) => {
            counter.roundTrips += 1;
            return d1Like.exec(query);
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  return { binding: wrapDatabase(d1), counter };
}

/** Wraps the queue producer to record what is sent. */
export function recordingQueue(queue: Queue) {
  const sent: unknown[] = [];
  const binding = {
    send: async (body: unknown, options?: QueueSendOptions) => {
      sent.push(body);
      await queue.send(body, options);
    },
    sendBatch: async (messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions) => {
      for (const message of messages) sent.push(message.body);
      await queue.sendBatch(messages, options);
    },
  } as unknown as Queue;
  return { binding, sent };
}

export async function createChatroom(token: string, name = `Room ${crypto.randomUUID().slice(0, 8)}`) {
  const res = await call("POST", "/api/chatroom", { token, body: { name } });
  if (res.status !== 201) throw new Error(`create chatroom failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.chatroom as { id: string; name: string; createdAt: string; updatedAt: string };
}

/** Makes the user Pro the way the billing webhook does: an active subscription row with a future period end. */
export async function makePro(userId: string) {
  const now = Date.now();
  await env.DB.prepare(
    "INSERT INTO subscriptions (user_id, status, current_period_end, cancel_at_period_end, created_at, updated_at) VALUES (?1, 'active', ?2, 0, ?3, ?3)",
  )
    .bind(userId, now + 30 * 24 * 3600 * 1000, now)
    .run();
}

export type PromptJobBody = { promptId: string };

/**
 * Delivers jobs to the Worker's real queue handler, as the Queues runtime would, and returns acks and
 * retries. getQueueResult does not report retry delays, so the options of each retry() call are kept.
 */
export async function runConsumer(
  jobs: PromptJobBody[],
  options: { attempts?: number; env?: Env; queue?: string } = {},
) {
  const batch = createMessageBatch<PromptJobBody>(
    options.queue ?? "gemini-prompts",
    jobs.map((body) => ({ id: crypto.randomUUID(), timestamp: new Date(), attempts: options.attempts ?? 1, body })),
  );
  const delays = new Map<string, number | undefined>();
  for (const message of batch.messages) {
    const retry = message.retry.bind(message);
    vi.spyOn(message, "retry").mockImplementation((retryOptions) => {
      delays.set(message.id, retryOptions?.delaySeconds);
      retry(retryOptions);
    });
  }
  const ctx = createExecutionContext();
  const queue = worker.queue as ExportedHandlerQueueHandler<Env, PromptJobBody>;
  await queue(batch, options.env ?? env, ctx);
  const result = await getQueueResult(batch, ctx);
  const ids = batch.messages.map((message) => message.id);
  return {
    acked: ids.filter((id) => result.explicitAcks.includes(id)).length,
    retried: (result.retryMessages as { msgId: string }[]).map(({ msgId }) => ({
      msgId,
      delaySeconds: delays.get(msgId),
    })),
  };
}

/** Sends a prompt and returns its id, checking the 202. */
export async function sendPrompt(token: string, chatroomId: string, userMessage = "Hello Gemini") {
  const res = await call("POST", `/api/chatroom/${chatroomId}/message`, { token, body: { userMessage } });
  if (res.status !== 202) throw new Error(`send failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.prompt.id as string;
}
