import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { call, createChatroom, PASSWORD, runConsumer, signUp, verifiedUser } from "./helpers";
import { geminiText, stubGemini } from "./stubs";

afterEach(() => {
  vi.restoreAllMocks();
});

/** Every JSON line the Worker logs while `run` runs. */
async function logsOf(run: () => Promise<unknown>) {
  const lines: string[] = [];
  for (const level of ["log", "info", "warn", "error"] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
    });
  }
  await run();
  vi.restoreAllMocks();
  return lines;
}

describe("logs", () => {
  it("one line per request: method, route pattern, status, duration, request id, user; no secrets", async () => {
    const { token, user } = await verifiedUser();
    const room = await createChatroom(token);
    const secretText = "my very private prompt text";
    let requestId = "";
    const lines = await logsOf(async () => {
      const sent = await call("POST", `/api/chatroom/${room.id}/message`, { token, body: { userMessage: secretText } });
      requestId = sent.headers.get("X-Request-Id") ?? "";
      await call("POST", "/api/auth/login", { body: { phoneNumber: "+15550000000", password: PASSWORD } });
    });
    const requests = lines.map((line) => JSON.parse(line)).filter((entry) => entry.message === "request");
    expect(requests).toEqual([
      {
        level: "info",
        message: "request",
        method: "POST",
        route: "/api/chatroom/:id/message",
        status: 202,
        durationMs: expect.any(Number),
        requestId,
        userId: user.id,
      },
      expect.objectContaining({ method: "POST", route: "/api/auth/login", status: 401, level: "warn" }),
    ]);
    const all = lines.join("\n");
    for (const secret of [token, secretText, PASSWORD, room.id.concat("?")]) expect(all).not.toContain(secret);
  });

  it("one line per queue message, with its outcome", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    const sent = await call("POST", `/api/chatroom/${room.id}/message`, { token, body: { userMessage: "hello" } });
    const promptId = sent.body.prompt.id;
    stubGemini(() => geminiText("hi"));
    const lines = await logsOf(() => runConsumer([{ promptId }], { env: { ...env, GEMINI_API_KEY: "k" } }));
    const entries = lines.map((line) => JSON.parse(line)).filter((entry) => entry.message === "queue message");
    expect(entries).toEqual([
      expect.objectContaining({ queue: "gemini-prompts", promptId, attempts: 1, outcome: "ack" }),
    ]);
    expect(lines.join("\n")).not.toContain("hello");
  });

  it("never logs an OTP or a password on signup and verification", async () => {
    let otp = "";
    const lines = await logsOf(async () => {
      const { phoneNumber } = await signUp();
      otp = (await call("POST", "/api/auth/send-otp", { body: { phoneNumber } })).body.otp;
      await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp } });
    });
    expect(otp).toMatch(/^\d{6}$/);
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines.join("\n")).not.toContain(otp);
    expect(lines.join("\n")).not.toContain(PASSWORD);
  });
});
