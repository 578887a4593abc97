import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  call,
  countingD1,
  createChatroom,
  expectError,
  makePro,
  PASSWORD,
  recordingQueue,
  runConsumer,
  sendPrompt,
  verifiedUser,
} from "./helpers";
import { expectLogged } from "./logs";
import {
  GEMINI_HOST,
  geminiError,
  geminiOverloaded,
  geminiPromptBlocked,
  geminiStream,
  geminiText,
  stubGemini,
  stubHost,
} from "./stubs";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const aiEnv = (): Env => ({ ...env, GEMINI_API_KEY: "test-gemini-key" });
const secondsToMidnight = () => {
  const now = new Date();
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.ceil((midnight - now.getTime()) / 1000);
};

async function roomOfNewUser() {
  const user = await verifiedUser();
  const room = await createChatroom(user.token);
  return { ...user, room };
}

const getPrompt = (token: string, roomId: string, promptId: string, query = "") =>
  call("GET", `/api/chatroom/${roomId}/message/${promptId}${query}`, { token });

describe("POST /api/chatroom/:id/message", () => {
  it("returns 202 with the pending prompt, usage and RateLimit headers, and queues it", async () => {
    const { token, room } = await roomOfNewUser();
    const queue = recordingQueue(env.PROMPT_QUEUE);
    const res = await call("POST", `/api/chatroom/${room.id}/message`, {
      token,
      body: { userMessage: "What is D1?" },
      env: { ...env, PROMPT_QUEUE: queue.binding },
    });
    expect(res.status).toBe(202);
    expect(res.body.prompt).toEqual({
      id: expect.any(String),
      chatroomId: room.id,
      role: "user",
      content: "What is D1?",
      status: "pending",
      createdAt: expect.any(String),
      parentId: null,
      version: { index: 1, count: 1, previousId: null, nextId: null },
      reply: null,
    });
    expect(res.body.usage).toMatchObject({ used: 1, limit: 5, remaining: 4 });
    expect(res.headers.get("RateLimit-Limit")).toBe("5");
    expect(res.headers.get("RateLimit-Remaining")).toBe("4");
    expect(Math.abs(Number(res.headers.get("RateLimit-Reset")) - secondsToMidnight())).toBeLessThanOrEqual(2);
    expect(queue.sent).toEqual([{ promptId: res.body.prompt.id }]);
    const stored = await getPrompt(token, room.id, res.body.prompt.id);
    expect(stored.body.prompt.status).toBe("pending");
  });

  it("returns 429 DAILY_LIMIT_REACHED with Retry-After to 00:00 UTC after 5 prompts", async () => {
    const { token, room } = await roomOfNewUser();
    for (let i = 0; i < 5; i++) await sendPrompt(token, room.id, `prompt ${i}`);
    const res = await call("POST", `/api/chatroom/${room.id}/message`, { token, body: { userMessage: "one more" } });
    expectError(res, 429, "DAILY_LIMIT_REACHED");
    expect(Math.abs(Number(res.headers.get("Retry-After")) - secondsToMidnight())).toBeLessThanOrEqual(2);
    expect(res.headers.get("RateLimit-Remaining")).toBe("0");
    const me = await call("GET", "/api/user/me", { token });
    expect(me.body.user.usage).toMatchObject({ used: 5, limit: 5, remaining: 0 });
    // The body says what the headers say, as /user/me does.
    expect(res.body.error.usage).toEqual(me.body.user.usage);
  });

  it("gives exactly 5 × 202 and 15 × 429 for 20 concurrent sends from a fresh Basic user", async () => {
    const { token, room } = await roomOfNewUser();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call("POST", `/api/chatroom/${room.id}/message`, { token, body: { userMessage: `concurrent ${i}` } }),
      ),
    );
    expect(results.filter((r) => r.status === 202)).toHaveLength(5);
    expect(results.filter((r) => r.status === 429)).toHaveLength(15);
    const page = await call("GET", `/api/chatroom/${room.id}/messages`, { token });
    expect(page.body.messages).toHaveLength(5);
  });

  it("lets a Pro user send more than 5 prompts, with usage limit null and no RateLimit headers", async () => {
    const { token, room, user } = await roomOfNewUser();
    await makePro(user.id);
    let last: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 7; i++) {
      last = await call("POST", `/api/chatroom/${room.id}/message`, { token, body: { userMessage: `pro ${i}` } });
      expect(last.status).toBe(202);
    }
    expect(last?.body.usage).toMatchObject({ used: 7, limit: null, remaining: null });
    expect(last?.headers.get("RateLimit-Limit")).toBeNull();
    const me = await call("GET", "/api/user/me", { token });
    expect(me.body.user).toMatchObject({ tier: "pro", usage: { used: 7, limit: null, remaining: null } });
  });

  it("uses at most 2 D1 round trips (1 without an Idempotency-Key)", async () => {
    const { token, room } = await roomOfNewUser();
    await call("GET", "/api/user/me", { token }); // token version cached in KV
    const plain = countingD1(env.DB);
    await call("POST", `/api/chatroom/${room.id}/message`, {
      token,
      body: { userMessage: "a" },
      env: { ...env, DB: plain.binding },
    });
    expect(plain.counter.roundTrips).toBe(1);
    const keyed = countingD1(env.DB);
    await call("POST", `/api/chatroom/${room.id}/message`, {
      token,
      body: { userMessage: "b" },
      headers: { "Idempotency-Key": "count-me" },
      env: { ...env, DB: keyed.binding },
    });
    expect(keyed.counter.roundTrips).toBe(2);
  });

  it.each([
    ["an empty message", { userMessage: "" }],
    ["a blank message", { userMessage: "   " }],
    ["a message over 8000 characters", { userMessage: "x".repeat(8001) }],
    ["a missing message", {}],
  ])("returns 400 VALIDATION_FAILED for %s and counts nothing", async (_label, body) => {
    const { token, room } = await roomOfNewUser();
    expectError(await call("POST", `/api/chatroom/${room.id}/message`, { token, body }), 400, "VALIDATION_FAILED");
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(0);
  });

  it("accepts a message of exactly 8000 characters, emoji and SQL-looking text verbatim", async () => {
    const { token, room } = await roomOfNewUser();
    for (const text of ["y".repeat(8000), "🤖 café ' OR 1=1; -- 100% _x_"]) {
      const id = await sendPrompt(token, room.id, text);
      expect((await getPrompt(token, room.id, id)).body.prompt.content).toBe(text);
    }
  });
});

describe("when the queue refuses a prompt", () => {
  it("answers 503 QUEUE_UNAVAILABLE, settles the prompt as failed with its quota unit back, and lets it be retried", async () => {
    const { token, room } = await roomOfNewUser();
    await call("GET", "/api/chatroom", { token });
    const refusingQueue = { send: () => Promise.reject(new Error("Queue send failed: 503")) } as unknown as Queue;
    const res = await call("POST", `/api/chatroom/${room.id}/message`, {
      token,
      body: { userMessage: "lost?" },
      env: { ...env, PROMPT_QUEUE: refusingQueue },
    });
    expectError(res, 503, "QUEUE_UNAVAILABLE");
    const page = await call("GET", `/api/chatroom/${room.id}/messages`, { token });
    expect(page.body.messages.map((m: { role: string; status: string }) => `${m.role}:${m.status}`)).toEqual([
      "user:failed",
      "assistant:failed",
    ]);
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(0);
    const list = await call("GET", "/api/chatroom", { token });
    expect(list.headers.get("X-Cache")).toBe("MISS");
    expect(list.body.chatrooms[0].lastMessageAt).not.toBeNull();
    const promptId = page.body.messages[0].id;
    expect((await call("POST", `/api/chatroom/${room.id}/message/${promptId}/retry`, { token })).status).toBe(202);
    expectLogged("error", "enqueue failed", { promptId, error: "Error: Queue send failed: 503" });
  });

  it("releases the Idempotency-Key, so the client's retry with the same key is sent", async () => {
    const { token, room } = await roomOfNewUser();
    const refusingQueue = { send: () => Promise.reject(new Error("Queue send failed: 503")) } as unknown as Queue;
    const send = (queue: Queue) =>
      call("POST", `/api/chatroom/${room.id}/message`, {
        token,
        body: { userMessage: "once the queue is back" },
        headers: { "Idempotency-Key": "key-after-503" },
        env: { ...env, PROMPT_QUEUE: queue },
      });
    expectError(await send(refusingQueue), 503, "QUEUE_UNAVAILABLE");
    const again = await send(env.PROMPT_QUEUE);
    expect(again.status).toBe(202);
    expect(again.body.prompt.status).toBe("pending");
    expectLogged("error", "enqueue failed", { error: "Error: Queue send failed: 503" });
  });

  it("settles a retried prompt the queue refuses as failed again, not pending forever", async () => {
    const { token, room } = await roomOfNewUser();
    const refusingQueue = { send: () => Promise.reject(new Error("Queue send failed: 503")) } as unknown as Queue;
    const refused = { ...env, PROMPT_QUEUE: refusingQueue };
    await call("POST", `/api/chatroom/${room.id}/message`, { token, body: { userMessage: "x" }, env: refused });
    const page = await call("GET", `/api/chatroom/${room.id}/messages`, { token });
    const promptId = page.body.messages[0].id;
    const retry = await call("POST", `/api/chatroom/${room.id}/message/${promptId}/retry`, { token, env: refused });
    expectError(retry, 503, "QUEUE_UNAVAILABLE");
    const read = await call("GET", `/api/chatroom/${room.id}/message/${promptId}`, { token });
    expect(read.body.prompt.status).toBe("failed");
    // The first send and the retry: each refusal is logged.
    expect(expectLogged("error", "enqueue failed", { promptId })).toHaveLength(2);
  });
});

describe("Idempotency-Key", () => {
  it("returns the first answer again and neither stores, queues nor counts twice", async () => {
    const { token, room } = await roomOfNewUser();
    const queue = recordingQueue(env.PROMPT_QUEUE);
    const send = () =>
      call("POST", `/api/chatroom/${room.id}/message`, {
        token,
        body: { userMessage: "only once" },
        headers: { "Idempotency-Key": "key-123" },
        env: { ...env, PROMPT_QUEUE: queue.binding },
      });
    const first = await send();
    const second = await send();
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body).toEqual(first.body);
    expect(second.headers.get("Idempotent-Replayed")).toBe("true");
    expect(second.headers.get("RateLimit-Remaining")).toBe(first.headers.get("RateLimit-Remaining"));
    expect(queue.sent).toHaveLength(1);
    expect((await call("GET", `/api/chatroom/${room.id}/messages`, { token })).body.messages).toHaveLength(1);
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(1);
  });

  it("counts once for concurrent repeats of one key", async () => {
    const { token, room } = await roomOfNewUser();
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        call("POST", `/api/chatroom/${room.id}/message`, {
          token,
          body: { userMessage: "same" },
          headers: { "Idempotency-Key": "burst" },
        }),
      ),
    );
    for (const res of results) expect([202, 409]).toContain(res.status);
    expect((await call("GET", `/api/chatroom/${room.id}/messages`, { token })).body.messages).toHaveLength(1);
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(1);
  });

  it("keeps keys per user and refuses a key reused for a different prompt with 409 IDEMPOTENCY_KEY_REUSED", async () => {
    const a = await roomOfNewUser();
    const b = await roomOfNewUser();
    const headers = { "Idempotency-Key": "shared-key" };
    expect(
      (
        await call("POST", `/api/chatroom/${a.room.id}/message`, {
          token: a.token,
          body: { userMessage: "x" },
          headers,
        })
      ).status,
    ).toBe(202);
    expect(
      (
        await call("POST", `/api/chatroom/${b.room.id}/message`, {
          token: b.token,
          body: { userMessage: "x" },
          headers,
        })
      ).status,
    ).toBe(202);
    expectError(
      await call("POST", `/api/chatroom/${a.room.id}/message`, {
        token: a.token,
        body: { userMessage: "different" },
        headers,
      }),
      409,
      "IDEMPOTENCY_KEY_REUSED",
    );
  });

  it("frees the key when the prompt was refused for the daily limit", async () => {
    const { token, room, user } = await roomOfNewUser();
    for (let i = 0; i < 5; i++) await sendPrompt(token, room.id, `fill ${i}`);
    const send = () =>
      call("POST", `/api/chatroom/${room.id}/message`, {
        token,
        body: { userMessage: "later" },
        headers: { "Idempotency-Key": "after-upgrade" },
      });
    expectError(await send(), 429, "DAILY_LIMIT_REACHED");
    await makePro(user.id);
    expect((await send()).status).toBe(202);
  });

  it("returns 400 VALIDATION_FAILED for a malformed key", async () => {
    const { token, room } = await roomOfNewUser();
    const res = await call("POST", `/api/chatroom/${room.id}/message`, {
      token,
      body: { userMessage: "x" },
      headers: { "Idempotency-Key": "has spaces in it" },
    });
    expectError(res, 400, "VALIDATION_FAILED");
  });
});

describe("queue consumer", () => {
  it("stores Gemini's reply with token counts, completes the prompt and touches the chatroom (full send → consume → read)", async () => {
    const { token, room } = await roomOfNewUser();
    const queue = recordingQueue(env.PROMPT_QUEUE);
    const sent = await call("POST", `/api/chatroom/${room.id}/message`, {
      token,
      body: { userMessage: "Say hi" },
      env: { ...env, PROMPT_QUEUE: queue.binding },
    });
    const calls = stubGemini(() => geminiText("Hi there!", { promptTokenCount: 3, candidatesTokenCount: 4 }));
    const result = await runConsumer(queue.sent as { promptId: string }[], { env: aiEnv() });
    expect(result).toEqual({ acked: 1, retried: [] });
    expect(calls).toHaveLength(1);
    expect(calls[0]?.url).toBe(
      "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
    );
    expect(calls[0]?.apiKey).toBe("test-gemini-key");
    expect(calls[0]?.body.contents).toEqual([{ role: "user", parts: [{ text: "Say hi" }] }]);

    const read = await getPrompt(token, room.id, sent.body.prompt.id);
    expect(read.body.prompt.status).toBe("completed");
    expect(read.body.prompt.reply).toEqual({
      id: expect.any(String),
      role: "assistant",
      content: "Hi there!",
      status: "completed",
      createdAt: expect.any(String),
      parentId: sent.body.prompt.id,
      version: { index: 1, count: 1, previousId: null, nextId: null },
      replyTo: sent.body.prompt.id,
      tokens: { prompt: 3, completion: 4 },
      model: "gemini-2.5-flash",
      feedback: null,
    });
    const detail = await call("GET", `/api/chatroom/${room.id}`, { token });
    expect(detail.body.chatroom.messages.map((m: { role: string }) => m.role)).toEqual(["user", "assistant"]);
    expect(Date.parse(detail.body.chatroom.updatedAt)).toBeGreaterThan(Date.parse(room.updatedAt));
    expect(detail.body.chatroom.lastMessageAt).not.toBeNull();
  });

  it("sends the conversation as multi-turn contents with user and model roles, leaving failed exchanges out", async () => {
    const { token, room } = await roomOfNewUser();
    const first = await sendPrompt(token, room.id, "My name is Asha.");
    stubGemini(() => geminiText("Nice to meet you, Asha."));
    await runConsumer([{ promptId: first }], { env: aiEnv() });
    const failed = await sendPrompt(token, room.id, "This one fails");
    vi.restoreAllMocks();
    stubGemini(() => geminiError(400, "Invalid argument", "INVALID_ARGUMENT"));
    await runConsumer([{ promptId: failed }], { env: aiEnv() });
    expectLogged("warn", "Gemini call failed", { promptId: failed, retryable: false });
    vi.restoreAllMocks();
    const second = await sendPrompt(token, room.id, "What is my name?");
    const calls = stubGemini(() => geminiText("Asha."));
    await runConsumer([{ promptId: second }], { env: aiEnv() });
    expect(calls[0]?.body.contents).toEqual([
      { role: "user", parts: [{ text: "My name is Asha." }] },
      { role: "model", parts: [{ text: "Nice to meet you, Asha." }] },
      { role: "user", parts: [{ text: "What is my name?" }] },
    ]);
  });

  it("sends at most the last 20 messages, opening with a user turn", async () => {
    const { token, room, user } = await roomOfNewUser();
    await makePro(user.id);
    stubGemini(() => geminiText("ok"));
    for (let i = 0; i < 11; i++) {
      const id = await sendPrompt(token, room.id, `turn ${i}`);
      await runConsumer([{ promptId: id }], { env: aiEnv() });
    }
    vi.restoreAllMocks();
    const last = await sendPrompt(token, room.id, "final");
    const calls = stubGemini(() => geminiText("done"));
    await runConsumer([{ promptId: last }], { env: aiEnv() });
    const contents = calls[0]?.body.contents ?? [];
    // The newest 20 are: a reply, then 9 full exchanges, then "final"; the leading reply is dropped.
    expect(contents).toHaveLength(19);
    expect(contents[0]).toEqual({ role: "user", parts: [{ text: "turn 2" }] });
    expect(contents.at(-1)).toEqual({ role: "user", parts: [{ text: "final" }] });
  });

  it("retries a 503 with a growing delay and succeeds on the third attempt", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    stubGemini(geminiOverloaded, geminiOverloaded, () => geminiText("Finally"));
    const first = await runConsumer([{ promptId: id }], { env: aiEnv(), attempts: 1 });
    const second = await runConsumer([{ promptId: id }], { env: aiEnv(), attempts: 2 });
    expect(first.acked).toBe(0);
    expect(second.acked).toBe(0);
    // The documented back-off: 5 s after the first attempt, 25 s after the second.
    expect(first.retried[0]?.delaySeconds).toBe(5);
    expect(second.retried[0]?.delaySeconds).toBe(25);
    expect((await getPrompt(token, room.id, id)).body.prompt.status).toBe("pending");
    expect(await runConsumer([{ promptId: id }], { env: aiEnv(), attempts: 3 })).toEqual({ acked: 1, retried: [] });
    expect((await getPrompt(token, room.id, id)).body.prompt.reply.content).toBe("Finally");
    const failures = expectLogged("warn", "Gemini call failed", { promptId: id, retryable: true });
    expect(failures.map((entry) => entry.attempts)).toEqual([1, 2]);
  });

  it("fails the prompt on the last attempt of a 503 with a clear message and gives the quota unit back", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(1);
    stubGemini(geminiOverloaded);
    expect(await runConsumer([{ promptId: id }], { env: aiEnv(), attempts: 3 })).toEqual({ acked: 1, retried: [] });
    const read = await getPrompt(token, room.id, id);
    expect(read.body.prompt.status).toBe("failed");
    expect(read.body.prompt.reply).toMatchObject({ role: "assistant", status: "failed" });
    expect(read.body.prompt.reply.content).toMatch(/busy/i);
    expect(read.body.prompt.reply.content).not.toMatch(/overloaded|UNAVAILABLE|503/);
    expect(read.body.prompt.reply.tokens).toBeUndefined();
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(0);
    expectLogged("warn", "Gemini call failed", { promptId: id, attempts: 3, retryable: true });
  });

  it.each([
    ["a safety block", geminiPromptBlocked, /safety/i, /SAFETY|HARM_CATEGORY/],
    [
      "a 400",
      () => geminiError(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT"),
      /could not process/i,
      /API key not valid|INVALID_ARGUMENT/,
    ],
    [
      "a 403",
      () => geminiError(403, "Permission denied on resource project 123", "PERMISSION_DENIED"),
      /credentials/i,
      /Permission denied|project 123/,
    ],
    ["an empty reply", () => geminiText("   "), /empty reply/i, /^\s*$/],
  ])("fails the prompt at once on %s, without retrying or raw upstream text", async (_label, answer, shown, hidden) => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const calls = stubGemini(answer);
    expect(await runConsumer([{ promptId: id }], { env: aiEnv(), attempts: 1 })).toEqual({ acked: 1, retried: [] });
    expect(calls).toHaveLength(1);
    const reply = (await getPrompt(token, room.id, id)).body.prompt.reply;
    expect(reply.status).toBe("failed");
    expect(reply.content).toMatch(shown);
    expect(reply.content).not.toMatch(hidden);
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(0);
    expectLogged("warn", "Gemini call failed", { promptId: id, attempts: 1, retryable: false });
  });

  it("retries network failures and 429s", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    stubGemini(() => "network-error");
    expect((await runConsumer([{ promptId: id }], { env: aiEnv() })).retried).toHaveLength(1);
    vi.restoreAllMocks();
    stubGemini(() => geminiError(429, "Resource has been exhausted (e.g. check quota).", "RESOURCE_EXHAUSTED"));
    expect((await runConsumer([{ promptId: id }], { env: aiEnv(), attempts: 2 })).retried).toHaveLength(1);
    expect((await getPrompt(token, room.id, id)).body.prompt.status).toBe("pending");
    const failures = expectLogged("warn", "Gemini call failed", { promptId: id, retryable: true });
    expect(failures.map((entry) => entry.attempts)).toEqual([1, 2]);
  });

  it('fails with "AI is not configured" when GEMINI_API_KEY is missing, and calls nobody', async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const calls = stubGemini(() => geminiText("unused"));
    expect(await runConsumer([{ promptId: id }], { env: { ...env, GEMINI_API_KEY: "" } })).toEqual({
      acked: 1,
      retried: [],
    });
    expect(calls).toHaveLength(0);
    const reply = (await getPrompt(token, room.id, id)).body.prompt.reply;
    expect(reply).toMatchObject({ status: "failed", content: expect.stringMatching(/AI is not configured/) });
    expectLogged("warn", "Gemini call failed", { promptId: id, retryable: false, detail: "GEMINI_API_KEY is not set" });
  });

  it("gives a prompt exactly one reply however often it is delivered, including concurrently", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const calls = stubGemini(() => geminiStream(["only ", "reply"], { gapMs: 20 }));
    const results = await Promise.all([
      runConsumer([{ promptId: id }], { env: aiEnv() }),
      runConsumer([{ promptId: id }], { env: aiEnv() }),
    ]);
    // One delivery writes the reply; the other finds it being written and comes back later.
    expect(results.map((r) => r.acked).sort()).toEqual([0, 1]);
    expect(results.flatMap((r) => r.retried)).toHaveLength(1);
    const again = await runConsumer([{ promptId: id }], { env: aiEnv(), attempts: 2 });
    expect(again).toEqual({ acked: 1, retried: [] });
    expect(calls).toHaveLength(1);
    expect((await getPrompt(token, room.id, id)).body.prompt.reply.content).toBe("only reply");
    const replies = await env.DB.prepare("SELECT count(*) AS n FROM messages WHERE reply_to = ?")
      .bind(id)
      .first<{ n: number }>();
    expect(replies?.n).toBe(1);
  });

  it("answers several prompts of a batch concurrently and acks each", async () => {
    const { token, room, user } = await roomOfNewUser();
    await makePro(user.id);
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push(await sendPrompt(token, room.id, `batch ${i}`));
    let inFlight = 0;
    let maxInFlight = 0;
    stubHost(GEMINI_HOST, async () => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 20));
      inFlight -= 1;
      return geminiText("ok");
    });
    const result = await runConsumer(
      ids.map((promptId) => ({ promptId })),
      { env: aiEnv() },
    );
    expect(result).toEqual({ acked: 4, retried: [] });
    expect(maxInFlight).toBe(4);
  });

  it("acks a job whose chatroom was deleted", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    await call("DELETE", `/api/chatroom/${room.id}`, { token });
    const calls = stubGemini(() => geminiText("unused"));
    expect(await runConsumer([{ promptId: id }], { env: aiEnv() })).toEqual({ acked: 1, retried: [] });
    expect(calls).toHaveLength(0);
  });

  it("uses 2 D1 round trips per prompt", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    stubGemini(() => geminiText("counted"));
    const { binding, counter } = countingD1(env.DB);
    await runConsumer([{ promptId: id }], { env: { ...aiEnv(), DB: binding } });
    expect(counter.roundTrips).toBe(2);
  });

  it("makes the completed reply visible in the owner's cached chatroom list", async () => {
    const { token, room } = await roomOfNewUser();
    await call("GET", "/api/chatroom", { token });
    const id = await sendPrompt(token, room.id);
    await call("GET", "/api/chatroom", { token });
    const before = await call("GET", "/api/chatroom", { token });
    expect(before.headers.get("X-Cache")).toBe("HIT");
    stubGemini(() => geminiText("reply"));
    await new Promise((resolve) => setTimeout(resolve, 5));
    await runConsumer([{ promptId: id }], { env: aiEnv() });
    const after = await call("GET", "/api/chatroom", { token });
    expect(after.headers.get("X-Cache")).toBe("MISS");
    expect(Date.parse(after.body.chatrooms[0].lastMessageAt)).toBeGreaterThan(
      Date.parse(before.body.chatrooms[0].lastMessageAt),
    );
  });
});

describe("GET /api/chatroom/:id/message/:messageId", () => {
  it("with wait, answers as soon as the reply lands", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    stubGemini(() => geminiText("landed"));
    const waiting = getPrompt(token, room.id, id, "?wait=25");
    await new Promise((resolve) => setTimeout(resolve, 150));
    await runConsumer([{ promptId: id }], { env: aiEnv() });
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.body.prompt.reply.content).toBe("landed");
  });

  it("with wait, answers pending when the wait ends first", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const res = await getPrompt(token, room.id, id, "?wait=1");
    expect(res.status).toBe(200);
    expect(res.body.prompt).toMatchObject({ status: "pending", reply: null });
  });

  it.each(["?wait=26", "?wait=-1", "?wait=abc", "?wait=1.5", "?wait=", "?wait=null", "?wait=1&wait=2"])(
    "returns 400 VALIDATION_FAILED for %s",
    async (query) => {
      const { token, room } = await roomOfNewUser();
      const id = await sendPrompt(token, room.id);
      expectError(await getPrompt(token, room.id, id, query), 400, "VALIDATION_FAILED");
    },
  );

  it("answers 404 for an assistant reply's id and for a prompt of another chatroom", async () => {
    const { token, room } = await roomOfNewUser();
    const other = await createChatroom(token);
    const id = await sendPrompt(token, room.id);
    stubGemini(() => geminiText("reply"));
    await runConsumer([{ promptId: id }], { env: aiEnv() });
    const replyId = (await getPrompt(token, room.id, id)).body.prompt.reply.id;
    expectError(await getPrompt(token, room.id, replyId), 404, "NOT_FOUND");
    expectError(await getPrompt(token, other.id, id), 404, "NOT_FOUND");
  });
});

describe("POST /api/chatroom/:id/message/:messageId/retry", () => {
  it("queues a failed prompt again, counts it again and lets it complete", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    stubGemini(geminiOverloaded);
    await runConsumer([{ promptId: id }], { env: aiEnv(), attempts: 3 });
    vi.restoreAllMocks();
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(0);

    const queue = recordingQueue(env.PROMPT_QUEUE);
    const res = await call("POST", `/api/chatroom/${room.id}/message/${id}/retry`, {
      token,
      env: { ...env, PROMPT_QUEUE: queue.binding },
    });
    expect(res.status).toBe(202);
    expect(res.body.prompt).toMatchObject({ id, status: "pending", reply: null, content: "Hello Gemini" });
    expect(res.body.usage.used).toBe(1);
    expect(queue.sent).toEqual([{ promptId: id }]);

    stubGemini(() => geminiText("Second time lucky"));
    await runConsumer([{ promptId: id }], { env: aiEnv() });
    const read = await getPrompt(token, room.id, id);
    expect(read.body.prompt).toMatchObject({ status: "completed", reply: { content: "Second time lucky" } });
    expectLogged("warn", "Gemini call failed", { promptId: id, attempts: 3 });
  });

  it("returns 409 NOT_FAILED for a pending or completed prompt", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    expectError(await call("POST", `/api/chatroom/${room.id}/message/${id}/retry`, { token }), 409, "NOT_FAILED");
    stubGemini(() => geminiText("done"));
    await runConsumer([{ promptId: id }], { env: aiEnv() });
    expectError(await call("POST", `/api/chatroom/${room.id}/message/${id}/retry`, { token }), 409, "NOT_FAILED");
  });

  it("returns 429 when the day's quota is used up, and leaves the prompt failed", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    await runConsumer([{ promptId: id }], { env: { ...env, GEMINI_API_KEY: "" } });
    for (let i = 0; i < 5; i++) await sendPrompt(token, room.id, `fill ${i}`);
    expectError(
      await call("POST", `/api/chatroom/${room.id}/message/${id}/retry`, { token }),
      429,
      "DAILY_LIMIT_REACHED",
    );
    expect((await getPrompt(token, room.id, id)).body.prompt.status).toBe("failed");
    expectLogged("warn", "Gemini call failed", { promptId: id, detail: "GEMINI_API_KEY is not set" });
  });
});

describe("GET /api/chatroom/:id/messages", () => {
  /** `count` completed prompts, each following the one before on the active branch. */
  async function seedMessages(roomId: string, userId: string, count: number) {
    const start = Date.now() - count * 1000;
    const ids = Array.from({ length: count }, (_, i) => {
      const at = start + i * 1000;
      return `${at
        .toString(16)
        .padStart(12, "0")
        .replace(/^(.{8})(.{4})$/, "$1-$2")}-7000-8000-${String(i).padStart(12, "0")}`;
    });
    const statements = ids.map((id, i) =>
      env.DB.prepare(
        "INSERT INTO messages (id, chatroom_id, user_id, role, content, status, parent_id, created_at, updated_at) VALUES (?1, ?2, ?3, 'user', ?4, 'completed', ?5, ?6, ?6)",
      ).bind(id, roomId, userId, `message ${i}`, ids[i - 1] ?? null, start + i * 1000),
    );
    statements.push(env.DB.prepare("UPDATE chatrooms SET active_leaf_id = ? WHERE id = ?").bind(ids.at(-1), roomId));
    await env.DB.batch(statements);
  }

  it("pages newest first with each page oldest first, without gaps or overlap", async () => {
    const { token, room, user } = await roomOfNewUser();
    await seedMessages(room.id, user.id, 120);
    const seen: string[] = [];
    let cursor: string | null = null;
    const sizes: number[] = [];
    do {
      const query: string = cursor ? `?limit=50&before=${cursor}` : "?limit=50";
      const res = await call("GET", `/api/chatroom/${room.id}/messages${query}`, { token });
      expect(res.status).toBe(200);
      sizes.push(res.body.messages.length);
      seen.unshift(...res.body.messages.map((m: { content: string }) => m.content));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(sizes).toEqual([50, 50, 20]);
    expect(seen).toEqual(Array.from({ length: 120 }, (_, i) => `message ${i}`));
  });

  it("defaults to 50 and returns nextCursor null when everything fits", async () => {
    const { token, room, user } = await roomOfNewUser();
    await seedMessages(room.id, user.id, 3);
    const res = await call("GET", `/api/chatroom/${room.id}/messages`, { token });
    expect(res.body.messages.map((m: { content: string }) => m.content)).toEqual([
      "message 0",
      "message 1",
      "message 2",
    ]);
    expect(res.body.nextCursor).toBeNull();
  });

  it.each(["?limit=0", "?limit=101", "?limit=ten", "?limit=", "?before=not-a-cursor"])(
    "returns 400 VALIDATION_FAILED for %s",
    async (query) => {
      const { token, room } = await roomOfNewUser();
      expectError(await call("GET", `/api/chatroom/${room.id}/messages${query}`, { token }), 400, "VALIDATION_FAILED");
    },
  );
});

describe("dead-letter queue", () => {
  it("settles a prompt whose deliveries all failed as failed, with the quota unit returned", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const calls = stubGemini(() => geminiText("unused"));
    const result = await runConsumer([{ promptId: id }], { env: aiEnv(), queue: "gemini-prompts-dlq" });
    expect(result).toEqual({ acked: 1, retried: [] });
    expect(calls).toHaveLength(0);
    const read = await getPrompt(token, room.id, id);
    expect(read.body.prompt).toMatchObject({
      status: "failed",
      reply: { status: "failed", content: expect.stringMatching(/retry/i) },
    });
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(0);
    expect((await call("POST", `/api/chatroom/${room.id}/message/${id}/retry`, { token })).status).toBe(202);
  });

  it("leaves an answered prompt untouched", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    stubGemini(() => geminiText("answered"));
    await runConsumer([{ promptId: id }], { env: aiEnv() });
    expect(await runConsumer([{ promptId: id }], { env: aiEnv(), queue: "gemini-prompts-dlq" })).toEqual({
      acked: 1,
      retried: [],
    });
    expect((await getPrompt(token, room.id, id)).body.prompt).toMatchObject({
      status: "completed",
      reply: { content: "answered" },
    });
  });
});

describe("our own failures and concurrent settles", () => {
  it("retries a message whose handling failed on our side (so it can reach the dead-letter queue), never acks it", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const failingDb = new Proxy(env.DB, {
      get(target, property) {
        if (property === "batch") return () => Promise.reject(new Error("D1_ERROR: unavailable"));
        if (property === "prepare")
          return () => {
            throw new Error("D1_ERROR: unavailable");
          };
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const calls = stubGemini(() => geminiText("never asked"));
    const result = await runConsumer([{ promptId: id }], { env: { ...aiEnv(), DB: failingDb }, attempts: 3 });
    expect(result.acked).toBe(0);
    expect(result.retried).toHaveLength(1);
    expect(calls).toHaveLength(0);
    expect((await getPrompt(token, room.id, id)).body.prompt.status).toBe("pending");
    expectLogged("error", "prompt consumer failed", { promptId: id, error: "Error: D1_ERROR: unavailable" });
  });

  it("gives a unit back once when two dead-letter deliveries of one prompt settle it at the same time", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id, "first");
    await sendPrompt(token, room.id, "second");
    await Promise.all([
      runConsumer([{ promptId: id }], { env: aiEnv(), queue: "gemini-prompts-dlq" }),
      runConsumer([{ promptId: id }], { env: aiEnv(), queue: "gemini-prompts-dlq" }),
    ]);
    expect((await getPrompt(token, room.id, id)).body.prompt.status).toBe("failed");
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(1);
  });

  it("gives a unit back once when a queued prompt is cancelled twice at the same time", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id, "first");
    await sendPrompt(token, room.id, "second");
    const cancel = () => call("POST", `/api/chatroom/${room.id}/message/${id}/cancel`, { token });
    const answers = await Promise.all([cancel(), cancel(), cancel()]);
    expect(answers.filter((answer) => answer.status === 200).length).toBeGreaterThanOrEqual(1);
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(1);
  });
});

describe("Idempotency-Key window", () => {
  it("replays for 24 hours, and after them the same key sends a new prompt", async () => {
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"], now: start });
    const { phoneNumber, token, room } = await roomOfNewUser();
    const send = (bearer: string) =>
      call("POST", `/api/chatroom/${room.id}/message`, {
        token: bearer,
        body: { userMessage: "once a day" },
        headers: { "Idempotency-Key": "daily-key" },
      });
    const first = await send(token);
    expect(first.status).toBe(202);

    vi.setSystemTime(start + 24 * 3_600_000 - 60_000);
    const replay = await send(token);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(replay.body.prompt.id).toBe(first.body.prompt.id);

    vi.setSystemTime(start + 24 * 3_600_000 + 60_000);
    // The first token has expired by now (24 h lifetime): sign in again.
    const login = await call("POST", "/api/auth/login", { body: { phoneNumber, password: PASSWORD } });
    const later = await send(login.body.authToken);
    expect(later.status).toBe(202);
    expect(later.headers.get("Idempotent-Replayed")).toBeNull();
    expect(later.body.prompt.id).not.toBe(first.body.prompt.id);
  });
});
