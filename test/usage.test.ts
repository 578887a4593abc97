import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { call, createChatroom, expectError, runConsumer, sendPrompt, verifiedUser } from "./helpers";
import { expectLogged } from "./logs";
import { geminiError, geminiText, stubGemini } from "./stubs";

afterEach(() => {
  vi.restoreAllMocks();
});

const aiEnv = () => ({ ...env, GEMINI_API_KEY: "test-gemini-key" });
const DAY_MS = 24 * 60 * 60 * 1000;
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

describe("GET /api/user/usage", () => {
  it("counts prompts and tokens per UTC day, newest first, with zero days, totals and today's quota", async () => {
    const { token, user } = await verifiedUser();
    const room = await createChatroom(token);
    // Yesterday, as the quota and a reply stored it then.
    const yesterday = Date.now() - DAY_MS;
    await env.DB.batch([
      env.DB.prepare("INSERT INTO prompt_usage (user_id, day, count) VALUES (?, ?, 3)").bind(user.id, dayOf(yesterday)),
      env.DB.prepare(
        "INSERT INTO messages (id, chatroom_id, user_id, role, content, status, prompt_tokens, completion_tokens, thought_tokens, created_at, updated_at) VALUES (?, ?, ?, 'assistant', 'old', 'completed', 100, 40, 10, ?, ?)",
      ).bind(crypto.randomUUID(), room.id, user.id, yesterday, yesterday),
    ]);
    const answered = await sendPrompt(token, room.id, "Hello");
    stubGemini(() => geminiText("Hi!", { promptTokenCount: 12, candidatesTokenCount: 5, thoughtsTokenCount: 30 }));
    await runConsumer([{ promptId: answered }], { env: aiEnv() });
    vi.restoreAllMocks();
    // A failed prompt gives its unit back: it is not counted.
    const failed = await sendPrompt(token, room.id, "Fail");
    stubGemini(() => geminiError(400, "Invalid argument", "INVALID_ARGUMENT"));
    await runConsumer([{ promptId: failed }], { env: aiEnv() });
    expectLogged("warn", "Gemini call failed", { promptId: failed, retryable: false });

    const res = await call("GET", "/api/user/usage?days=7", { token });
    expect(res.status).toBe(200);
    expect(res.body.tier).toBe("basic");
    expect(res.body.days).toHaveLength(7);
    expect(res.body.days[0]).toEqual({ date: dayOf(Date.now()), prompts: 1, promptTokens: 12, outputTokens: 35 });
    expect(res.body.days[1]).toEqual({ date: dayOf(yesterday), prompts: 3, promptTokens: 100, outputTokens: 50 });
    expect(res.body.days.slice(2).every((day: { prompts: number }) => day.prompts === 0)).toBe(true);
    expect(res.body.days.at(-1).date).toBe(dayOf(Date.now() - 6 * DAY_MS));
    expect(res.body.totals).toEqual({ prompts: 4, promptTokens: 112, outputTokens: 85 });
    const me = await call("GET", "/api/user/me", { token });
    expect(res.body.today).toEqual(me.body.user.usage);
  });

  it("shows 30 days by default and nobody else's usage", async () => {
    const a = await verifiedUser();
    const room = await createChatroom(a.token);
    await sendPrompt(a.token, room.id);
    const b = await verifiedUser();
    const res = await call("GET", "/api/user/usage", { token: b.token });
    expect(res.body.days).toHaveLength(30);
    expect(res.body.totals).toEqual({ prompts: 0, promptTokens: 0, outputTokens: 0 });
    expect(res.body.today).toMatchObject({ used: 0, limit: 5, remaining: 5 });
  });

  it.each(["days=0", "days=91", "days=1.5", "days=", "day=3"])(
    "answers 400 VALIDATION_FAILED for ?%s",
    async (query) => {
      const { token } = await verifiedUser();
      expectError(await call("GET", `/api/user/usage?${query}`, { token }), 400, "VALIDATION_FAILED");
    },
  );

  it("needs a token", async () => {
    expectError(await call("GET", "/api/user/usage"), 401, "UNAUTHORIZED");
  });
});
