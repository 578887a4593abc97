import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { call, createChatroom, expectError, runConsumer, sendPrompt, verifiedUser } from "./helpers";
import { geminiText, stubGemini } from "./stubs";

afterEach(() => {
  vi.restoreAllMocks();
});

const aiEnv = () => ({ ...env, GEMINI_API_KEY: "test-gemini-key" });

/** A user with a chatroom holding one answered exchange whose prompt holds markup. */
async function answeredRoom() {
  const user = await verifiedUser();
  const room = await createChatroom(user.token, "Tags & <Trips>");
  const id = await sendPrompt(user.token, room.id, 'What does <script>alert("x")</script> do?');
  stubGemini(() => geminiText("It would run a script & show x."));
  await runConsumer([{ promptId: id }], { env: aiEnv() });
  vi.restoreAllMocks();
  return { ...user, room, promptId: id };
}

const share = (token: string, roomId: string) => call("POST", `/api/chatroom/${roomId}/share`, { token });

describe("shared links", () => {
  it("shares a snapshot of the active branch that anyone can read, naming no id or phone", async () => {
    const { token, room, phoneNumber } = await answeredRoom();
    const created = await share(token, room.id);
    expect(created.status).toBe(201);
    const { id, url, messageCount } = created.body.share;
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(url).toBe(`http://localhost/s/${id}`);
    expect(messageCount).toBe(2);
    // Sent after the share: never added to it.
    await sendPrompt(token, room.id, "A later question");

    const read = await call("GET", `/api/shared/${id}`);
    expect(read.status).toBe(200);
    expect(read.body.share).toEqual({
      id,
      chatroomName: "Tags & <Trips>",
      createdAt: created.body.share.createdAt,
      messages: [
        { role: "user", content: 'What does <script>alert("x")</script> do?', createdAt: expect.any(String) },
        { role: "assistant", content: "It would run a script & show x.", createdAt: expect.any(String) },
      ],
    });
    const text = JSON.stringify(read.body);
    expect(text).not.toContain(room.id);
    expect(text).not.toContain(phoneNumber);
    expect(read.headers.get("Cache-Control")).toBe("public, max-age=60");
    const etag = read.headers.get("ETag");
    expect(etag).toBeTruthy();
    const again = await call("GET", `/api/shared/${id}`, { headers: { "If-None-Match": etag as string } });
    expect(again.status).toBe(304);
  });

  it("serves the read-only page at /s/:id with every text escaped, a strict CSP and no script", async () => {
    const { token, room } = await answeredRoom();
    const { id } = (await share(token, room.id)).body.share;
    const res = await call("GET", `/s/${id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/^text\/html/);
    const html: string = res.body;
    expect(html).toContain("<title>Tags &amp; &lt;Trips&gt;</title>");
    expect(html).toContain("What does &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; do?");
    expect(html).not.toContain("<script");
    const csp = res.headers.get("Content-Security-Policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toContain("script-src");
    expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    // A page, not an API route.
    expectError(await call("GET", `/api/s/${id}`), 404, "NOT_FOUND");
  });

  it("lists a chatroom's shares newest first and revokes one: its link answers 404 at once", async () => {
    const { token, room } = await answeredRoom();
    const first = (await share(token, room.id)).body.share;
    const second = (await share(token, room.id)).body.share;
    const listed = await call("GET", `/api/chatroom/${room.id}/shares`, { token });
    expect(listed.body.shares.map((s: { id: string }) => s.id)).toEqual([second.id, first.id]);
    const revoked = await call("DELETE", `/api/chatroom/${room.id}/share/${first.id}`, { token });
    expect(revoked.status).toBe(200);
    expect(revoked.body.share.id).toBe(first.id);
    expectError(await call("GET", `/api/shared/${first.id}`), 404, "NOT_FOUND");
    expectError(await call("GET", `/s/${first.id}`), 404, "NOT_FOUND");
    expect((await call("GET", `/api/shared/${second.id}`)).status).toBe(200);
    expectError(await call("DELETE", `/api/chatroom/${room.id}/share/${first.id}`, { token }), 404, "NOT_FOUND");
  });

  it("goes with its chatroom", async () => {
    const { token, room } = await answeredRoom();
    const { id } = (await share(token, room.id)).body.share;
    await call("DELETE", `/api/chatroom/${room.id}`, { token });
    expectError(await call("GET", `/api/shared/${id}`), 404, "NOT_FOUND");
  });

  it("answers 409 NOTHING_TO_SHARE before any reply has completed", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    expectError(await share(token, room.id), 409, "NOTHING_TO_SHARE");
    await sendPrompt(token, room.id, "pending");
    expectError(await share(token, room.id), 409, "NOTHING_TO_SHARE");
  });

  it("lets nobody else share, list or revoke, and finds no malformed or unknown link", async () => {
    const { token, room } = await answeredRoom();
    const { id } = (await share(token, room.id)).body.share;
    const stranger = await verifiedUser();
    expectError(await share(stranger.token, room.id), 404, "NOT_FOUND");
    expectError(await call("GET", `/api/chatroom/${room.id}/shares`, { token: stranger.token }), 404, "NOT_FOUND");
    expectError(
      await call("DELETE", `/api/chatroom/${room.id}/share/${id}`, { token: stranger.token }),
      404,
      "NOT_FOUND",
    );
    expect((await call("GET", `/api/shared/${id}`)).status).toBe(200);
    for (const bad of ["nope", "x".repeat(22), "../../etc", "A".repeat(200)]) {
      expectError(await call("GET", `/api/shared/${encodeURIComponent(bad)}`), 404, "NOT_FOUND");
    }
  });
});
