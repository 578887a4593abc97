import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { call, createChatroom, expectError, makePro, runConsumer, sendPrompt, verifiedUser } from "./helpers";
import { geminiText, stubGemini } from "./stubs";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const aiEnv = () => ({ ...env, GEMINI_API_KEY: "test-gemini-key" });

describe("GET /api/user/export", () => {
  it("downloads the whole account, every branch, settings, feedback and usage, and nothing secret", async () => {
    const { token, user, phoneNumber } = await verifiedUser();
    await makePro(user.id);
    const room = await createChatroom(token, "Exported");
    await call("PATCH", `/api/chatroom/${room.id}`, { token, body: { systemInstruction: "Be brief." } });
    const q1 = await sendPrompt(token, room.id, "First question");
    stubGemini(() =>
      geminiText("First answer", { promptTokenCount: 4, candidatesTokenCount: 2, thoughtsTokenCount: 9 }),
    );
    await runConsumer([{ promptId: q1 }], { env: aiEnv() });
    vi.restoreAllMocks();
    const reply = (await call("GET", `/api/chatroom/${room.id}/message/${q1}`, { token })).body.prompt.reply;
    await call("PUT", `/api/chatroom/${room.id}/message/${reply.id}/feedback`, { token, body: { rating: "up" } });
    const edited = await call("POST", `/api/chatroom/${room.id}/message/${q1}/edit`, {
      token,
      body: { userMessage: "First question, edited" },
    });
    const other = await verifiedUser();
    const theirs = await createChatroom(other.token, "Not mine");
    await sendPrompt(other.token, theirs.id, "their secret");

    const res = await call("GET", "/api/user/export", { token });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(res.headers.get("Content-Disposition")).toMatch(
      /^attachment; filename="gemini-backend-export-\d{4}-\d{2}-\d{2}\.json"$/,
    );
    const data = res.body;
    expect(data.user).toMatchObject({ id: user.id, phoneNumber });
    expect(data.subscription).toMatchObject({ status: "active", cancelAtPeriodEnd: false });
    expect(data.chatrooms).toHaveLength(1);
    const [exported] = data.chatrooms;
    expect(exported).toMatchObject({ id: room.id, name: "Exported", systemInstruction: "Be brief." });
    expect(exported.messages.map((m: { content: string }) => m.content)).toEqual([
      "First question",
      "First answer",
      "First question, edited",
    ]);
    expect(exported.messages[1]).toMatchObject({
      parentId: q1,
      tokens: { prompt: 4, completion: 2, thoughts: 9 },
      model: "gemini-2.5-flash",
      feedback: { rating: "up" },
    });
    expect(exported.messages[2]).toMatchObject({ id: edited.body.prompt.id, version: { index: 2, count: 2 } });
    expect(data.usage).toEqual([{ date: new Date().toISOString().slice(0, 10), prompts: 2 }]);
    const text = JSON.stringify(data);
    for (const secret of ["their secret", "password", "pbkdf2", "otp", "stripe", "token_version", "jti"]) {
      expect(text.toLowerCase()).not.toContain(secret);
    }
  });

  it("pages through more messages than one read holds, in order", async () => {
    const { token, user } = await verifiedUser();
    const room = await createChatroom(token);
    const ids = Array.from({ length: 1203 }, (_, i) => `019a4000-0000-7000-8000-${String(i).padStart(12, "0")}`);
    await env.DB.batch(
      ids.map((id, i) =>
        env.DB.prepare(
          "INSERT INTO messages (id, chatroom_id, user_id, role, content, status, parent_id, created_at, updated_at) VALUES (?, ?, ?, 'user', ?, 'completed', ?, 1, 1)",
        ).bind(id, room.id, user.id, `m${i}`, ids[i - 1] ?? null),
      ),
    );
    const res = await call("GET", "/api/user/export", { token });
    const contents = res.body.chatrooms[0].messages.map((m: { content: string }) => m.content);
    expect(contents).toEqual(ids.map((_, i) => `m${i}`));
  });

  it("allows one export a minute, answering 429 EXPORT_RATE_LIMITED with Retry-After", async () => {
    const { token } = await verifiedUser();
    expect((await call("GET", "/api/user/export", { token })).status).toBe(200);
    const again = await call("GET", "/api/user/export", { token });
    expectError(again, 429, "EXPORT_RATE_LIMITED");
    const retryAfter = Number(again.headers.get("Retry-After"));
    expect(retryAfter).toBeGreaterThan(50);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Another user is not held back.
    const other = await verifiedUser();
    expect((await call("GET", "/api/user/export", { token: other.token })).status).toBe(200);
    // A minute later it works again.
    vi.useFakeTimers({ now: Date.now() + 61_000, toFake: ["Date"] });
    expect((await call("GET", "/api/user/export", { token })).status).toBe(200);
  });

  it("answers HEAD with the headers, without using the minute's export", async () => {
    const { token } = await verifiedUser();
    const head = await call("HEAD", "/api/user/export", { token });
    expect(head.status).toBe(200);
    expect(head.headers.get("Content-Disposition")).toMatch(/^attachment;/);
    expect((await call("GET", "/api/user/export", { token })).status).toBe(200);
  });

  it("needs a token", async () => {
    expectError(await call("GET", "/api/user/export"), 401, "UNAUTHORIZED");
  });
});
