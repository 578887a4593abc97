import { createExecutionContext, env, listDurableObjectIds, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ChatroomHub } from "../src/features/live/chatroom-hub";
import worker from "../src/index";
import {
  call,
  createChatroom,
  expectError,
  expectUnauthorized,
  PASSWORD,
  requestOtp,
  runConsumer,
  sendPrompt,
} from "./helpers";
import { hubOf, openStream, roomOfNewUser } from "./live-helpers";
import { expectLogged } from "./logs";
import { geminiError, stubGemini } from "./stubs";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** A second token of the same user (another device). */
async function secondToken(phoneNumber: string) {
  const res = await call("POST", "/api/auth/login", { body: { phoneNumber, password: PASSWORD } });
  expect(res.status).toBe(200);
  return res.body.authToken as string;
}

async function ticketFor(token: string, chatroomId: string) {
  const res = await call("POST", `/api/chatroom/${chatroomId}/stream-ticket`, { token });
  expect(res.status).toBe(200);
  return res.body.ticket as string;
}

/** Opens the chatroom's events as a WebSocket and records what arrives. */
async function openSocket(path: string, token?: string) {
  const headers: Record<string, string> = { Upgrade: "websocket" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await worker.fetch(new Request(`http://localhost${path}`, { headers }), env, createExecutionContext());
  expect(res.status).toBe(101);
  const socket = res.webSocket as WebSocket;
  socket.accept();
  const messages: string[] = [];
  let closed: { code: number; reason: string } | undefined;
  socket.addEventListener("message", (e) => {
    messages.push(e.data as string);
  });
  socket.addEventListener("close", (e) => {
    closed = { code: e.code, reason: e.reason };
  });
  return { socket, messages, closed: () => closed };
}

describe("authorization for the whole life of a stream", () => {
  it("logout ends the SSE streams of that token and of its tickets with revoked, and no other stream", async () => {
    const { token, room, phoneNumber } = await roomOfNewUser();
    const other = await secondToken(phoneNumber);
    const byBearer = await openStream("GET", `/api/chatroom/${room.id}/events`, { token });
    const byTicket = await openStream(
      "GET",
      `/api/chatroom/${room.id}/events?ticket=${await ticketFor(token, room.id)}`,
    );
    const otherDevice = await openStream("GET", `/api/chatroom/${room.id}/events`, { token: other });

    expect((await call("POST", "/api/auth/logout", { token })).status).toBe(200);
    for (const stream of [byBearer, byTicket]) {
      expect(await stream.rest()).toEqual([{ id: expect.any(String), event: "revoked", data: { reason: "logout" } }]);
    }
    // The user's other token streams on.
    const id = await sendPrompt(other, room.id);
    expect(await otherDevice.next()).toMatchObject({ event: "prompt", data: { prompt: { id } } });
    otherDevice.close();
  });

  it("logout-all ends per-prompt streams and chatroom streams in every chatroom of the user", async () => {
    const { token, room, phoneNumber } = await roomOfNewUser();
    const second = await createChatroom(token);
    const id = await sendPrompt(token, room.id);
    const perPrompt = await openStream("GET", `/api/chatroom/${room.id}/message/${id}/stream`, { token });
    expect((await perPrompt.next())?.event).toBe("prompt");
    const elsewhere = await openStream("GET", `/api/chatroom/${second.id}/events`, { token });
    const fresh = await secondToken(phoneNumber);

    expect((await call("POST", "/api/auth/logout-all", { token: fresh })).status).toBe(200);
    expect((await perPrompt.rest()).map((e) => [e.event, e.data])).toEqual([["revoked", { reason: "logout-all" }]]);
    expect((await elsewhere.rest()).map((e) => e.data)).toEqual([{ reason: "logout-all" }]);
  });

  it("a password change sends revoked over a WebSocket and closes it at once", async () => {
    const { token, room } = await roomOfNewUser();
    const ws = await openSocket(`/api/chatroom/${room.id}/events`, token);
    const changed = await call("POST", "/api/auth/change-password", {
      token,
      body: { currentPassword: PASSWORD, newPassword: "an0therPass" },
    });
    expect(changed.status).toBe(200);
    await vi.waitUntil(() => ws.closed(), { timeout: 2_000, interval: 20 });
    expect(ws.messages.map((m) => JSON.parse(m))).toEqual([
      { id: expect.any(String), event: "revoked", data: { reason: "password-changed" } },
    ]);
    expect(ws.closed()?.code).toBe(1008);
    // The token that came with the change opens streams as before.
    const renewed = await openStream("GET", `/api/chatroom/${room.id}/events`, { token: changed.body.authToken });
    expect(renewed.response.status).toBe(200);
    renewed.close();
  });

  it("a password reset ends a ticket-opened WebSocket", async () => {
    const { token, room, phoneNumber } = await roomOfNewUser();
    const ws = await openSocket(`/api/chatroom/${room.id}/events?ticket=${await ticketFor(token, room.id)}`);
    const otp = await requestOtp(phoneNumber, "/api/auth/forgot-password");
    const reset = await call("POST", "/api/auth/reset-password", {
      body: { phoneNumber, otp, newPassword: "r3setPassword" },
    });
    expect(reset.status).toBe(200);
    await vi.waitUntil(() => ws.closed(), { timeout: 2_000, interval: 20 });
    expect(JSON.parse(ws.messages[0] ?? "null")).toMatchObject({
      event: "revoked",
      data: { reason: "password-reset" },
    });
  });

  it("a stream whose token the hub heard revoked a moment before it arrived is ended at once", async () => {
    // Its token was checked before the revocation reached KV; the hub remembers the revocation.
    const { token, room, user } = await roomOfNewUser();
    const claims = JSON.parse(atob((token.split(".")[1] ?? "").replace(/-/g, "+").replace(/_/g, "/")));
    await hubOf(room.id).revokeStreams({ userId: user.id, tokenId: claims.jti, reason: "logout" });
    const stream = await openStream("GET", `/api/chatroom/${room.id}/events`, { token });
    expect((await stream.rest()).map((e) => e.event)).toEqual(["revoked"]);
  });

  it("a long-poll whose token is revoked during the wait answers 401", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const waiting = call("GET", `/api/chatroom/${room.id}/message/${id}?wait=5`, { token });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await call("POST", "/api/auth/logout", { token })).status).toBe(200);
    expectUnauthorized(await waiting, /logout/);
  });
});

describe("live paths check ownership before touching a hub", () => {
  it("streams, waits, cancels and tickets for another user's or a made-up chatroom create no hub", async () => {
    const owner = await roomOfNewUser();
    const id = await sendPrompt(owner.token, owner.room.id);
    const { token } = await roomOfNewUser();
    const before = (await listDurableObjectIds(env.CHATROOM_HUB)).length;
    const rooms = [owner.room.id, crypto.randomUUID(), "not-an-id", "%E2%80%AE"];
    for (const room of rooms) {
      for (const path of [
        `/api/chatroom/${room}/events`,
        `/api/chatroom/${room}/message/${id}/stream`,
        `/api/chatroom/${room}/message/${crypto.randomUUID()}/stream`,
        `/api/chatroom/${room}/message/${id}?wait=1`,
      ]) {
        expectError(await call("GET", path, { token, headers: { Accept: "text/event-stream" } }), 404, "NOT_FOUND");
      }
      const upgrade = await worker.fetch(
        new Request(`http://localhost/api/chatroom/${room}/events`, {
          headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` },
        }),
        env,
        createExecutionContext(),
      );
      expect(upgrade.status).toBe(404);
      await upgrade.body?.cancel();
      expectError(await call("POST", `/api/chatroom/${room}/message/${id}/cancel`, { token }), 404, "NOT_FOUND");
      expectError(await call("POST", `/api/chatroom/${room}/stream-ticket`, { token }), 404, "NOT_FOUND");
    }
    expect((await listDurableObjectIds(env.CHATROOM_HUB)).length).toBe(before);
  });
});

describe("a per-prompt stream belongs to the prompt's current run", () => {
  it("never ends a retried prompt with the reply of its earlier run", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    stubGemini(() => geminiError(400, "Invalid argument", "INVALID_ARGUMENT"));
    await runConsumer([{ promptId: id }], { env: { ...env, GEMINI_API_KEY: "test-gemini-key" } });
    expectLogged("warn", "Gemini call failed", { promptId: id, retryable: false });
    const failed = await call("GET", `/api/chatroom/${room.id}/message/${id}`, { token });
    expect(failed.body.prompt.status).toBe("failed");
    expect((await call("POST", `/api/chatroom/${room.id}/message/${id}/retry`, { token })).status).toBe(202);
    // The hub has not heard of the retry yet (its announcement is still on the way): it knows the failed run.
    await runInDurableObject(hubOf(room.id), (_hub: ChatroomHub, state) => {
      state.storage.sql.exec(
        "UPDATE prompts SET state = 'settled', settled = ?, incarnation = 0 WHERE id = ?",
        JSON.stringify(failed.body.prompt),
        id,
      );
    });
    const stream = await openStream("GET", `/api/chatroom/${room.id}/message/${id}/stream`, { token });
    expect(await stream.next()).toMatchObject({
      event: "prompt",
      data: { prompt: { id, status: "pending", reply: null } },
    });
    await expect(stream.next(300)).rejects.toThrow(/no event/);
    stream.close();
  });
});

describe("GET …/message/:messageId?wait=N when the chatroom is deleted during the wait", () => {
  it("answers 404 at once", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const started = Date.now();
    const waiting = call("GET", `/api/chatroom/${room.id}/message/${id}?wait=20`, { token });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await call("DELETE", `/api/chatroom/${room.id}`, { token })).status).toBe(200);
    expectError(await waiting, 404, "NOT_FOUND");
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe("a subscriber that stops reading", () => {
  it("is dropped once more than 1 MiB waits for it, while a reading subscriber gets everything, and resumes from where it was", async () => {
    const { token, room } = await roomOfNewUser();
    const stalled = await openStream("GET", `/api/chatroom/${room.id}/events`, { token });
    const reading = await openStream("GET", `/api/chatroom/${room.id}/events`, { token });
    const id = await sendPrompt(token, room.id);
    expect((await stalled.next())?.event).toBe("prompt");
    const promptEvent = await reading.next();
    // The send moved the active branch: every chatroom stream hears where it now ends.
    expect((await reading.next())?.data).toEqual({ activeLeafId: id });
    const hub = hubOf(room.id);
    expect(await hub.beginGeneration(id, "g1", 1, false)).toEqual({ stop: false });
    const piece = "x".repeat(64 * 1024);
    const pieces = 24; // 1.5 MiB in all
    const received: string[] = [];
    for (let i = 0; i < pieces; i++) {
      await hub.pushDelta(id, "g1", piece);
      // The reading subscriber keeps up; the stalled one reads nothing.
      const event = await reading.next();
      received.push(event?.data.text);
    }
    expect(received.join("").length).toBe(pieces * piece.length);
    reading.close();

    // The stalled stream ended: what it still yields is under 1 MiB of deltas, then an error or its end.
    let got = 0;
    let lastId = promptEvent?.id ?? "";
    expect(promptEvent?.event).toBe("prompt");
    await expect(
      (async () => {
        for (let e = await stalled.next(); e; e = await stalled.next()) {
          got += e.data.text?.length ?? 0;
          lastId = e.id;
        }
      })(),
    ).rejects.toThrow(/fell too far behind/);
    expect(got).toBeLessThanOrEqual(1024 * 1024);
    // Resuming after the last event it took replays the rest.
    const resumed = await openStream("GET", `/api/chatroom/${room.id}/events`, {
      token,
      headers: { "Last-Event-ID": lastId },
    });
    let replayed = 0;
    while (got + replayed < pieces * piece.length) replayed += (await resumed.next())?.data.text.length ?? 0;
    expect(got + replayed).toBe(pieces * piece.length);
    resumed.close();
  });
});

describe("WebSocket keepalive", () => {
  it("answers ping with pong", async () => {
    const { token, room } = await roomOfNewUser();
    const ws = await openSocket(`/api/chatroom/${room.id}/events`, token);
    ws.socket.send("ping");
    await vi.waitUntil(() => ws.messages.length > 0, { timeout: 2_000, interval: 20 });
    expect(ws.messages).toEqual(["pong"]);
    ws.socket.close();
  });

  it("closes a WebSocket right after deleted", async () => {
    const { token, room } = await roomOfNewUser();
    const ws = await openSocket(`/api/chatroom/${room.id}/events`, token);
    expect((await call("DELETE", `/api/chatroom/${room.id}`, { token })).status).toBe(200);
    await vi.waitUntil(() => ws.closed(), { timeout: 1_000, interval: 20 });
    expect(ws.messages.map((m) => JSON.parse(m).event)).toEqual(["deleted"]);
    expect(ws.closed()?.code).toBe(1000);
  });
});

describe("what a hub keeps", () => {
  it("forgets a prompt it has heard nothing of for an hour, whatever its state, at its next publish", async () => {
    const { token, room } = await roomOfNewUser();
    const stale = await sendPrompt(token, room.id);
    const hub = hubOf(room.id);
    await hub.beginGeneration(stale, "lost", 1, false);
    await runInDurableObject(hub, (_hub: ChatroomHub, state) => {
      state.storage.sql.exec("UPDATE prompts SET seen_at = ? WHERE id = ?", Date.now() - 61 * 60 * 1000, stale);
    });
    const fresh = await sendPrompt(token, room.id);
    const ids = await runInDurableObject(hub, (_hub: ChatroomHub, state) =>
      state.storage.sql
        .exec<{ id: string }>("SELECT id FROM prompts")
        .toArray()
        .map((row) => row.id),
    );
    expect(ids).toEqual([fresh]);
  });
});
