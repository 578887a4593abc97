import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanTitle } from "../src/features/prompts/titles";
import { geminiChunk } from "../tools/stubs/gemini-chunks.mjs";
import { call, createChatroom, expectError, runConsumer, sendPrompt, verifiedUser } from "./helpers";
import { openStream } from "./live-helpers";
import { expectLogged } from "./logs";
import { geminiError, geminiText, stubGemini } from "./stubs";

afterEach(() => {
  vi.restoreAllMocks();
});

const aiEnv = () => ({ ...env, GEMINI_API_KEY: "test-gemini-key" });

/** A generateContent answer (not streamed), as the Gemini REST API gives it. */
const geminiJson = (text: string) =>
  Response.json(geminiChunk(text, { finishReason: "STOP", usage: { promptTokenCount: 30, candidatesTokenCount: 4 } }));

async function untitledRoom(token: string) {
  const res = await call("POST", "/api/chatroom", { token, body: {} });
  expect(res.status).toBe(201);
  expect(res.body.chatroom.name).toBeNull();
  return res.body.chatroom as { id: string; name: null };
}

/** Sends a prompt and answers it with `reply`, then the title call (if one is made) with `title`. */
async function firstExchange(token: string, roomId: string, title: () => Response) {
  const id = await sendPrompt(token, roomId, "Which river flows through Lisbon?");
  const calls = stubGemini(() => geminiText("The Tagus flows through Lisbon."), title);
  expect(await runConsumer([{ promptId: id }], { env: aiEnv() })).toEqual({ acked: 1, retried: [] });
  vi.restoreAllMocks();
  return { id, calls };
}

const nameOf = async (token: string, roomId: string) =>
  (await call("GET", `/api/chatroom/${roomId}`, { token })).body.chatroom.name;

describe("automatic titles", () => {
  it("names a chatroom created without a name after its first reply, tells every device, and updates the list", async () => {
    const { token } = await verifiedUser();
    const room = await untitledRoom(token);
    expect((await call("GET", "/api/chatroom", { token })).body.chatrooms[0].name).toBeNull();
    const stream = await openStream("GET", `/api/chatroom/${room.id}/events`, { token });
    const { calls } = await firstExchange(token, room.id, () => geminiJson('"Rivers of Lisbon."\nA short talk.'));
    expect(calls).toHaveLength(2);
    const titleCall = calls[1];
    expect(titleCall?.url).toBe(
      "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
    );
    const sent = titleCall?.body as unknown as {
      systemInstruction: { parts: { text: string }[] };
      contents: { parts: { text: string }[] }[];
    };
    expect(sent.systemInstruction.parts[0]?.text).toMatch(/title/);
    expect(sent.contents[0]?.parts[0]?.text).toBe(
      "User: Which river flows through Lisbon?\n\nAssistant: The Tagus flows through Lisbon.",
    );
    expect(await nameOf(token, room.id)).toBe("Rivers of Lisbon");
    expect((await call("GET", "/api/chatroom", { token })).body.chatrooms[0].name).toBe("Rivers of Lisbon");
    const events: string[] = [];
    for (let event = await stream.next(); event && event.event !== "chatroom"; event = await stream.next()) {
      events.push(event.event);
    }
    expect(events).toContain("reply");
    stream.close();
    // The title took no quota unit.
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(1);
  });

  it("makes the title unique among the user's names with (2), (3)", async () => {
    const { token } = await verifiedUser();
    await createChatroom(token, "rivers of lisbon");
    const second = await untitledRoom(token);
    await firstExchange(token, second.id, () => geminiJson("Rivers of Lisbon"));
    expect(await nameOf(token, second.id)).toBe("Rivers of Lisbon (2)");
    const third = await untitledRoom(token);
    await firstExchange(token, third.id, () => geminiJson("Rivers of Lisbon"));
    expect(await nameOf(token, third.id)).toBe("Rivers of Lisbon (3)");
  });

  it("never overwrites a name the user set, and asks no title of a named chatroom", async () => {
    const { token } = await verifiedUser();
    const room = await untitledRoom(token);
    const id = await sendPrompt(token, room.id, "Hello");
    expect((await call("PATCH", `/api/chatroom/${room.id}`, { token, body: { name: "Mine" } })).status).toBe(200);
    const calls = stubGemini(
      () => geminiText("Hi"),
      () => geminiJson("Their title"),
    );
    await runConsumer([{ promptId: id }], { env: aiEnv() });
    expect(calls).toHaveLength(1);
    expect(await nameOf(token, room.id)).toBe("Mine");
    const named = await createChatroom(token, "Named");
    expect((await firstExchange(token, named.id, () => geminiJson("Other"))).calls).toHaveLength(1);
  });

  it("leaves the name null when the title call fails, and the reply stands", async () => {
    const { token } = await verifiedUser();
    const room = await untitledRoom(token);
    const { id } = await firstExchange(token, room.id, () => geminiError(500, "Internal error", "INTERNAL"));
    expect(await nameOf(token, room.id)).toBeNull();
    expectLogged("warn", "chatroom title failed", { chatroomId: room.id });
    const read = await call("GET", `/api/chatroom/${room.id}/message/${id}`, { token });
    expect(read.body.prompt.status).toBe("completed");
    // The next completed reply tries again.
    const next = await sendPrompt(token, room.id, "And Porto?");
    stubGemini(
      () => geminiText("The Douro."),
      () => geminiJson("Portuguese rivers"),
    );
    await runConsumer([{ promptId: next }], { env: aiEnv() });
    expect(await nameOf(token, room.id)).toBe("Portuguese rivers");
  });

  it("keeps two untitled chatrooms apart, and a name can still be given at creation", async () => {
    const { token } = await verifiedUser();
    await untitledRoom(token);
    await untitledRoom(token);
    expect((await call("GET", "/api/chatroom", { token })).body.chatrooms).toHaveLength(2);
    expectError(await call("POST", "/api/chatroom", { token, body: { name: "" } }), 400, "VALIDATION_FAILED");
  });
});

describe("cleanTitle", () => {
  it.each([
    ['"Rivers of Lisbon."', "Rivers of Lisbon"],
    ["**Title:** Trip to Porto\nMore text", "Trip to Porto"],
    ["\n\n  # Weekend   plans!  \n", "Weekend plans"],
    ["“Café au lait”", "Café au lait"],
    ["a\u0007b", "ab"],
    ["   ", ""],
  ])("%j → %j", (raw, title) => {
    expect(cleanTitle(raw)).toBe(title);
  });

  it("cuts a long title to 60 characters at a word", () => {
    const title = cleanTitle("A very long title about the many rivers and bridges of Lisbon and Porto in the spring");
    expect([...title].length).toBeLessThanOrEqual(60);
    expect(title).toBe("A very long title about the many rivers and bridges of");
  });
});
