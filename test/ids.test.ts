import { afterEach, describe, expect, it, vi } from "vitest";
import { uuidv7 } from "../src/lib/ids";
import { call, createChatroom, sendPrompt, verifiedUser } from "./helpers";

afterEach(() => {
  vi.useRealTimers();
});

describe("ids", () => {
  it("increase strictly within one millisecond, past the 12-bit sequence, and keep the v7 layout", () => {
    const ids = Array.from({ length: 5_000 }, () => uuidv7(1_767_225_600_000));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("keep two prompts sent in the same millisecond in order, in history and through the cursor", async () => {
    const user = await verifiedUser();
    const room = await createChatroom(user.token);
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    const sent = [];
    for (let i = 0; i < 4; i++) sent.push(await sendPrompt(user.token, room.id, `prompt ${i}`));
    vi.useRealTimers();
    const page = await call("GET", `/api/chatroom/${room.id}/messages`, { token: user.token });
    expect(page.body.messages.map((m: { id: string }) => m.id)).toEqual(sent);
    const walked: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=1&before=${encodeURIComponent(cursor)}` : "?limit=1";
      const one = await call("GET", `/api/chatroom/${room.id}/messages${query}`, { token: user.token });
      walked.unshift(...one.body.messages.map((m: { id: string }) => m.id));
      cursor = one.body.nextCursor;
    } while (cursor);
    expect(walked).toEqual(sent);
  });
});
