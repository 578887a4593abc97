import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { call, createChatroom, expectError, runConsumer, sendPrompt, verifiedUser } from "./helpers";
import { geminiText, stubGemini } from "./stubs";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** A user with a chatroom holding one answered prompt; returns the prompt's and the reply's ids. */
async function answered() {
  const { token } = await verifiedUser();
  const room = await createChatroom(token);
  const promptId = await sendPrompt(token, room.id, "Name a river in Lisbon");
  stubGemini(() => geminiText("The Tagus."));
  await runConsumer([{ promptId }], { env: { ...env, GEMINI_API_KEY: "test-gemini-key" } });
  const prompt = await call("GET", `/api/chatroom/${room.id}/message/${promptId}`, { token });
  expect(prompt.body.prompt.status).toBe("completed");
  return { token, room, promptId, replyId: prompt.body.prompt.reply.id as string };
}

const feedbackPath = (roomId: string, messageId: string) => `/api/chatroom/${roomId}/message/${messageId}/feedback`;

describe("PUT and DELETE …/message/:messageId/feedback", () => {
  it("rates a reply, shows the rating wherever the reply is shown, replaces it, and removes it", async () => {
    const { token, room, promptId, replyId } = await answered();
    const up = await call("PUT", feedbackPath(room.id, replyId), {
      token,
      body: { rating: "up", comment: "Short and\nright" },
    });
    expect(up.status).toBe(200);
    expect(up.body.reply).toMatchObject({
      id: replyId,
      role: "assistant",
      feedback: { rating: "up", comment: "Short and\nright", updatedAt: expect.any(String) },
    });

    const page = await call("GET", `/api/chatroom/${room.id}/messages`, { token });
    expect(page.body.messages.find((m: { id: string }) => m.id === replyId).feedback.rating).toBe("up");
    const prompt = await call("GET", `/api/chatroom/${room.id}/message/${promptId}`, { token });
    expect(prompt.body.prompt.reply.feedback).toMatchObject({ rating: "up", comment: "Short and\nright" });

    // A second PUT replaces the first; a comment left out is cleared.
    const down = await call("PUT", feedbackPath(room.id, replyId), { token, body: { rating: "down" } });
    expect(down.body.reply.feedback).toMatchObject({ rating: "down", comment: null });

    const removed = await call("DELETE", feedbackPath(room.id, replyId), { token });
    expect(removed.status).toBe(200);
    expect(removed.body.reply.feedback).toBeNull();
    const after = await call("GET", `/api/chatroom/${room.id}`, { token });
    expect(after.body.chatroom.messages.find((m: { id: string }) => m.id === replyId).feedback).toBeNull();
  });

  it("answers 404 for a prompt id, another user's reply, another chatroom and an unknown id, changing nothing", async () => {
    const { token, room, promptId, replyId } = await answered();
    const other = await verifiedUser();
    const otherRoom = await createChatroom(token);
    const body = { rating: "up" };
    expectError(await call("PUT", feedbackPath(room.id, promptId), { token, body }), 404, "NOT_FOUND");
    expectError(await call("PUT", feedbackPath(room.id, replyId), { token: other.token, body }), 404, "NOT_FOUND");
    expectError(await call("DELETE", feedbackPath(room.id, replyId), { token: other.token }), 404, "NOT_FOUND");
    expectError(await call("PUT", feedbackPath(otherRoom.id, replyId), { token, body }), 404, "NOT_FOUND");
    expectError(await call("PUT", feedbackPath(room.id, crypto.randomUUID()), { token, body }), 404, "NOT_FOUND");
    const page = await call("GET", `/api/chatroom/${room.id}/messages`, { token });
    expect(page.body.messages.find((m: { id: string }) => m.id === replyId).feedback).toBeNull();
    expect(page.body.messages.find((m: { id: string }) => m.id === promptId).feedback).toBeUndefined();
  });

  it("answers 400 VALIDATION_FAILED for a rating other than up or down, and a comment that is too long, blank or has control characters", async () => {
    const { token, room, replyId } = await answered();
    for (const body of [
      {},
      { rating: "meh" },
      { rating: "up", comment: "x".repeat(1001) },
      { rating: "up", comment: "  " },
      { rating: "up", comment: "bad\u0000byte" },
      { rating: "up", comment: 5 },
    ]) {
      expectError(await call("PUT", feedbackPath(room.id, replyId), { token, body }), 400, "VALIDATION_FAILED");
    }
    const ok = await call("PUT", feedbackPath(room.id, replyId), {
      token,
      body: { rating: "up", comment: "x".repeat(1000) },
    });
    expect(ok.status).toBe(200);
  });
});
