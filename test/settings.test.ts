import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { call, createChatroom, expectError, makePro, runConsumer, sendPrompt, verifiedUser } from "./helpers";
import { openStream } from "./live-helpers";
import { geminiText, stubGemini } from "./stubs";

afterEach(() => {
  vi.restoreAllMocks();
});

const aiEnv = () => ({ ...env, GEMINI_API_KEY: "test-gemini-key" });
const modelOfCall = (url: string | undefined) => /models\/([^:]+):/.exec(url ?? "")?.[1];

/** Gemini answers the prompt; returns what it was sent. */
async function answer(promptId: string, text = "ok") {
  vi.restoreAllMocks();
  const calls = stubGemini(() => geminiText(text));
  await runConsumer([{ promptId }], { env: aiEnv() });
  vi.restoreAllMocks();
  return calls;
}

type SentBody = { systemInstruction?: { parts: { text: string }[] }; contents: { role: string }[] };
/** What the first Gemini call was sent. */
function bodyOf(calls: { body: unknown }[]): SentBody {
  expect(calls).toHaveLength(1);
  return calls[0]?.body as SentBody;
}

const patch = (token: string, id: string, body: unknown) => call("PATCH", `/api/chatroom/${id}`, { token, body });

describe("GET /api/models", () => {
  it("lists GEMINI_MODELS with their tiers and the default, without a token", async () => {
    const res = await call("GET", "/api/models");
    expect(res.status).toBe(200);
    expect(res.body.models).toEqual([
      { id: "gemini-2.5-flash", label: "Gemini 2.5 Flash", tiers: ["basic", "pro"], default: true },
      { id: "gemini-2.5-pro", label: "Gemini 2.5 Pro", tiers: ["pro"], default: false },
    ]);
    const custom = await call("GET", "/api/models", {
      env: { ...env, GEMINI_MODELS: "gemini-x-pro, gemini-x-lite", GEMINI_PRO_MODELS: "gemini-x-pro" },
    });
    // A Pro-only model listed first is never the default.
    expect(custom.body.models).toEqual([
      { id: "gemini-x-pro", label: "Gemini X Pro", tiers: ["pro"], default: false },
      { id: "gemini-x-lite", label: "Gemini X Lite", tiers: ["basic", "pro"], default: true },
    ]);
  });
});

describe("chatroom settings", () => {
  it("sends the system instruction as Gemini's systemInstruction and uses the chatroom's model, recorded on the reply", async () => {
    const { token, user } = await verifiedUser();
    await makePro(user.id);
    const created = await call("POST", "/api/chatroom", {
      token,
      body: { name: "Planner", systemInstruction: "Answer in French.\nBe brief.", model: "gemini-2.5-pro" },
    });
    expect(created.status).toBe(201);
    expect(created.body.chatroom).toMatchObject({
      systemInstruction: "Answer in French.\nBe brief.",
      model: "gemini-2.5-pro",
      activeLeafId: null,
    });
    const room = created.body.chatroom;
    const id = await sendPrompt(token, room.id, "Hello");
    const calls = await answer(id, "Bonjour");
    expect(modelOfCall(calls[0]?.url)).toBe("gemini-2.5-pro");
    const sent = bodyOf(calls);
    expect(sent.systemInstruction?.parts).toEqual([{ text: "Answer in French.\nBe brief." }]);
    // Not as a message: the contents are the conversation alone.
    expect(sent.contents).toHaveLength(1);
    const read = await call("GET", `/api/chatroom/${room.id}/message/${id}`, { token });
    expect(read.body.prompt.reply.model).toBe("gemini-2.5-pro");
  });

  it("applies changed settings to the prompts answered after the change, and null clears them", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    const first = await sendPrompt(token, room.id, "one");
    const before = await answer(first);
    expect(bodyOf(before).systemInstruction).toBeUndefined();
    const changed = await patch(token, room.id, { systemInstruction: "Talk like a pirate." });
    expect(changed.status).toBe(200);
    expect(changed.body.chatroom).toMatchObject({
      name: room.name,
      systemInstruction: "Talk like a pirate.",
      model: null,
    });
    const second = await sendPrompt(token, room.id, "two");
    const during = await answer(second);
    expect(bodyOf(during).systemInstruction?.parts).toEqual([{ text: "Talk like a pirate." }]);
    const cleared = await patch(token, room.id, { systemInstruction: null, model: null });
    expect(cleared.body.chatroom).toMatchObject({ systemInstruction: null, model: null });
    const third = await sendPrompt(token, room.id, "three");
    expect(bodyOf(await answer(third))).not.toHaveProperty("systemInstruction");
  });

  it("refuses a Pro-only model to a Basic user with 403 PRO_REQUIRED, and an unknown one with 400", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    expectError(await patch(token, room.id, { model: "gemini-2.5-pro" }), 403, "PRO_REQUIRED");
    expectError(
      await call("POST", "/api/chatroom", { token, body: { name: "Pro room", model: "gemini-2.5-pro" } }),
      403,
      "PRO_REQUIRED",
    );
    expectError(await patch(token, room.id, { model: "gpt-4" }), 400, "VALIDATION_FAILED");
    expect((await patch(token, room.id, { model: "gemini-2.5-flash" })).body.chatroom.model).toBe("gemini-2.5-flash");
    // Nothing was created or changed by the refusals.
    const list = await call("GET", "/api/chatroom", { token });
    expect(list.body.chatrooms.map((r: { name: string }) => r.name)).toEqual([room.name]);
  });

  it("answers a lapsed Pro user's prompt in a Pro-model chatroom with the default model", async () => {
    const { token, user } = await verifiedUser();
    await makePro(user.id);
    const room = await createChatroom(token);
    expect((await patch(token, room.id, { model: "gemini-2.5-pro" })).status).toBe(200);
    await env.DB.prepare("UPDATE subscriptions SET current_period_end = ? WHERE user_id = ?")
      .bind(Date.now() - 1000, user.id)
      .run();
    const id = await sendPrompt(token, room.id, "still there?");
    const calls = await answer(id);
    expect(modelOfCall(calls[0]?.url)).toBe("gemini-2.5-flash");
    const read = await call("GET", `/api/chatroom/${room.id}/message/${id}`, { token });
    expect(read.body.prompt.reply.model).toBe("gemini-2.5-flash");
    // The chatroom keeps its setting for when the user is Pro again.
    expect((await call("GET", `/api/chatroom/${room.id}`, { token })).body.chatroom.model).toBe("gemini-2.5-pro");
  });

  it("rejects an empty change, a system instruction over 4000 characters and a non-string model with 400", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    expectError(await patch(token, room.id, {}), 400, "VALIDATION_FAILED");
    expectError(await patch(token, room.id, { systemInstruction: "x".repeat(4001) }), 400, "VALIDATION_FAILED");
    expectError(await patch(token, room.id, { systemInstruction: "bad\u0000" }), 400, "VALIDATION_FAILED");
    expectError(await patch(token, room.id, { model: 42 }), 400, "VALIDATION_FAILED");
    expect((await patch(token, room.id, { systemInstruction: "y".repeat(4000) })).status).toBe(200);
  });

  it("tells every device of the change with a chatroom event", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    const stream = await openStream("GET", `/api/chatroom/${room.id}/events`, { token });
    const changed = await patch(token, room.id, { name: "Renamed", systemInstruction: "Be kind." });
    const event = await stream.next();
    stream.close();
    expect(event?.event).toBe("chatroom");
    expect(event?.data.chatroom).toEqual(changed.body.chatroom);
  });
});
