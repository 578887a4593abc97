import { describe, expect, it } from "vitest";
import { call, createChatroom, expectError, PASSWORD, uniquePhone, verifiedUser } from "./helpers";

async function roomOfNewUser() {
  const user = await verifiedUser();
  return { ...user, room: await createChatroom(user.token) };
}

/** Sends a prompt as raw JSON text, so escapes such as a lone surrogate reach the server as written. */
const sendRaw = (token: string, roomId: string, json: string) =>
  call("POST", `/api/chatroom/${roomId}/message`, {
    token,
    rawBody: `{"userMessage":${json}}`,
    headers: { "Content-Type": "application/json" },
  });

describe("text fields", () => {
  it("refuse a prompt with a lone surrogate, a control character or nothing visible: one issue each", async () => {
    const { token, room } = await roomOfNewUser();
    const cases: [string, RegExp][] = [
      ['"broken \\ud800 text"', /lone surrogate/],
      ['"tail \\udc00"', /lone surrogate/],
      ['"nul \\u0000 inside"', /control characters/],
      ['"c1 \\u0085 inside"', /control characters/],
      ['"\\u200b\\u200b \\u2060"', /must not be blank/],
      ['""', /must not be blank/],
      ['"   "', /must not be blank/],
    ];
    for (const [json, message] of cases) {
      const res = await sendRaw(token, room.id, json);
      expectError(res, 400, "VALIDATION_FAILED");
      expect(res.body.error.details).toHaveLength(1);
      expect(res.body.error.details[0]).toMatchObject({ path: "userMessage", message: expect.stringMatching(message) });
    }
    const history = await call("GET", `/api/chatroom/${room.id}/messages`, { token });
    expect(history.body.messages).toEqual([]);
  });

  it("store exactly what they echo: NFC-normalised, tabs and newlines kept in a prompt", async () => {
    const { token, room } = await roomOfNewUser();
    const res = await sendRaw(token, room.id, '"Cafe\\u0301 menu:\\n\\t1. \\ud83c\\udf70 cake"');
    expect(res.status).toBe(202);
    expect(res.body.prompt.content).toBe("Caf\u00e9 menu:\n\t1. \u{1f370} cake");
    const stored = await call("GET", `/api/chatroom/${room.id}/message/${res.body.prompt.id}`, { token });
    expect(stored.body.prompt.content).toBe(res.body.prompt.content);
  });

  it("hold chatroom names and full names to one visible line", async () => {
    const { token, room } = await roomOfNewUser();
    for (const name of ["two\nlines", "tab\there", "\u200b", "bell\u0007"]) {
      expectError(await call("POST", "/api/chatroom", { token, body: { name } }), 400, "VALIDATION_FAILED");
      expectError(await call("PATCH", `/api/chatroom/${room.id}`, { token, body: { name } }), 400, "VALIDATION_FAILED");
    }
    const created = await call("POST", "/api/chatroom", { token, body: { name: "  Re\u0301sume\u0301  " } });
    expect(created.status).toBe(201);
    expect(created.body.chatroom.name).toBe("R\u00e9sum\u00e9");

    const signup = (fullName: string) =>
      call("POST", "/api/auth/signup", { body: { phoneNumber: uniquePhone(), password: PASSWORD, fullName } });
    const refused = await signup("Asha\u0000Rao");
    expectError(refused, 400, "VALIDATION_FAILED");
    expect(refused.body.error.details).toEqual([{ path: "fullName", message: expect.stringMatching(/control/) }]);
    expect((await signup("Zoe\u0308 Rao")).body.user.fullName).toBe("Zo\u00eb Rao");
  });
});
