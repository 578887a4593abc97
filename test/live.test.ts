import { createExecutionContext, env, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { REPLAY_MAX_EVENTS } from "../src/features/live/chatroom-hub";
import { formatEventId } from "../src/features/live/live.events";
import worker from "../src/index";
import { call, createChatroom, expectError, expectUnauthorized, PASSWORD, runConsumer, sendPrompt } from "./helpers";
import { hubOf, openStream, roomOfNewUser, type SseEvent } from "./live-helpers";
import { expectLogged } from "./logs";
import { geminiOverloaded, geminiStream, geminiText, stubGemini } from "./stubs";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const aiEnv = (): Env => ({ ...env, GEMINI_API_KEY: "test-gemini-key" });

const textOf = (events: SseEvent[], promptId: string) =>
  events
    .filter((e) => e.event === "delta" && e.data.promptId === promptId)
    .map((e) => e.data.text)
    .join("");

describe("POST /api/chatroom/:id/message with Accept: text/event-stream", () => {
  it("streams prompt (with usage), the deltas in order, then reply, and ends", async () => {
    const { token, room } = await roomOfNewUser();
    const stream = await openStream("POST", `/api/chatroom/${room.id}/message`, {
      token,
      body: { userMessage: "Stream it" },
    });
    expect(stream.response.status).toBe(200);
    expect(stream.response.headers.get("Content-Type")).toBe("text/event-stream; charset=utf-8");
    expect(stream.response.headers.get("Cache-Control")).toBe("no-cache");
    expect(stream.response.headers.get("RateLimit-Remaining")).toBe("4");
    expect(stream.response.headers.get("Access-Control-Allow-Origin")).toBe("*");
    const first = await stream.next();
    expect(first).toMatchObject({ event: "prompt", data: { prompt: { status: "pending", content: "Stream it" } } });
    expect(first?.data.usage).toMatchObject({ used: 1, limit: 5 });
    const promptId = first?.data.prompt.id as string;

    stubGemini(() => geminiStream(["One ", "two ", "three ", "four."], { gapMs: 70 }));
    const consumed = runConsumer([{ promptId }], { env: aiEnv() });
    const events = await stream.rest();
    await consumed;
    const deltas = events.filter((e) => e.event === "delta");
    expect(deltas.length).toBeGreaterThanOrEqual(3);
    expect(textOf(events, promptId)).toBe("One two three four.");
    const last = events.at(-1);
    expect(last?.event).toBe("reply");
    expect(last?.data.prompt).toMatchObject({
      id: promptId,
      status: "completed",
      reply: { content: "One two three four." },
    });
    const ids = events.map((e) => e.id);
    expect([...ids].sort()).toEqual(ids);
    // The reply event carries exactly what the REST endpoint now returns.
    const rest = await call("GET", `/api/chatroom/${room.id}/message/${promptId}`, { token });
    expect(last?.data.prompt).toEqual(rest.body.prompt);
  });

  it("answers the usual JSON errors before any stream starts", async () => {
    const { token, room } = await roomOfNewUser();
    const res = await call("POST", `/api/chatroom/${room.id}/message`, {
      token,
      body: { userMessage: "" },
      headers: { Accept: "text/event-stream" },
    });
    expectError(res, 400, "VALIDATION_FAILED");
    const missing = await call("POST", `/api/chatroom/${crypto.randomUUID()}/message`, {
      token,
      body: { userMessage: "x" },
      headers: { Accept: "text/event-stream" },
    });
    expectError(missing, 404, "NOT_FOUND");
  });
});

describe("delta coalescing", () => {
  it("sends the first piece at once and folds a fast burst into a few deltas, losing nothing", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const stream = await openStream("GET", `/api/chatroom/${room.id}/message/${id}/stream`, { token });
    const pieces = Array.from({ length: 100 }, (_, i) => `w${i} `);
    stubGemini(() => geminiStream(pieces));
    await runConsumer([{ promptId: id }], { env: aiEnv() });
    const events = await stream.rest();
    const deltas = events.filter((e) => e.event === "delta");
    expect(deltas[0]?.data.text).toBe("w0 ");
    expect(deltas.length).toBeLessThan(10);
    expect(textOf(events, id)).toBe(pieces.join(""));
  });
});

describe("GET /api/chatroom/:id/message/:messageId/stream", () => {
  it("gives prompt and reply at once for a settled prompt", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    stubGemini(() => geminiText("Done already"));
    await runConsumer([{ promptId: id }], { env: aiEnv() });
    const stream = await openStream("GET", `/api/chatroom/${room.id}/message/${id}/stream`, { token });
    const events = await stream.rest();
    expect(events.map((e) => e.event)).toEqual(["prompt", "reply"]);
    expect(events[1]?.data.prompt.reply.content).toBe("Done already");
  });

  it("joins mid-stream with one delta holding all the text so far, then follows live", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    let joined: ReturnType<typeof openStream> | undefined;
    stubGemini(() =>
      geminiStream(["alpha ", "beta ", "gamma ", "delta"], {
        gapMs: 80,
        onChunk: (index) => {
          if (index === 1) {
            joined = new Promise((resolve) => setTimeout(resolve, 60)).then(() =>
              openStream("GET", `/api/chatroom/${room.id}/message/${id}/stream`, { token }),
            );
          }
        },
      }),
    );
    const consumed = runConsumer([{ promptId: id }], { env: aiEnv() });
    await vi.waitUntil(() => joined !== undefined, { timeout: 3_000 });
    const stream = await (joined as ReturnType<typeof openStream>);
    const events = await stream.rest();
    await consumed;
    expect(events[0]?.event).toBe("prompt");
    expect(events[1]).toMatchObject({ event: "delta" });
    expect(events[1]?.data.text.startsWith("alpha beta")).toBe(true);
    expect(textOf(events, id)).toBe("alpha beta gamma delta");
    expect(events.at(-1)?.data.prompt.status).toBe("completed");
  });

  it("answers 404 JSON for another user's prompt and 401 without auth", async () => {
    const a = await roomOfNewUser();
    const b = await roomOfNewUser();
    const id = await sendPrompt(a.token, a.room.id);
    expectError(
      await call("GET", `/api/chatroom/${a.room.id}/message/${id}/stream`, { token: b.token }),
      404,
      "NOT_FOUND",
    );
    expectError(await call("GET", `/api/chatroom/${a.room.id}/message/${id}/stream`), 401, "UNAUTHORIZED");
  });
});

describe("GET /api/chatroom/:id/events", () => {
  it("carries every prompt, delta and reply of the chatroom, and resumes after Last-Event-ID", async () => {
    const { token, room } = await roomOfNewUser();
    const live = await openStream("GET", `/api/chatroom/${room.id}/events`, { token });
    expect(live.response.status).toBe(200);
    const id = await sendPrompt(token, room.id, "from another device");
    const promptEvent = await live.next();
    expect(promptEvent).toMatchObject({ event: "prompt", data: { prompt: { id, content: "from another device" } } });
    stubGemini(() => geminiStream(["Hello ", "every ", "device"], { gapMs: 60 }));
    await runConsumer([{ promptId: id }], { env: aiEnv() });
    const seen: SseEvent[] = [];
    for (let e = await live.next(); e; e = await live.next()) {
      seen.push(e);
      if (e.event === "reply") break;
    }
    live.close();
    expect(textOf(seen, id)).toBe("Hello every device");
    expect(seen.at(-1)?.data.prompt.status).toBe("completed");

    // A client that dropped after the prompt event gets everything after it, by header or by query.
    const byHeader = await openStream("GET", `/api/chatroom/${room.id}/events`, {
      token,
      headers: { "Last-Event-ID": promptEvent?.id ?? "" },
    });
    const replayed: SseEvent[] = [];
    for (let e = await byHeader.next(); e; e = await byHeader.next()) {
      replayed.push(e);
      if (e.event === "reply") break;
    }
    byHeader.close();
    expect(replayed.map((e) => e.id)).toEqual(seen.map((e) => e.id));
    const byQuery = await openStream("GET", `/api/chatroom/${room.id}/events?lastEventId=${seen.at(-2)?.id}`, {
      token,
    });
    expect((await byQuery.next())?.id).toBe(seen.at(-1)?.id);
    byQuery.close();
  });

  it("sends reset for an id it cannot replay from", async () => {
    const { token, room } = await roomOfNewUser();
    for (const lastEventId of ["not-an-id", "9999999999999999"]) {
      const stream = await openStream("GET", `/api/chatroom/${room.id}/events`, {
        token,
        headers: { "Last-Event-ID": lastEventId },
      });
      expect(await stream.next()).toMatchObject({ event: "reset", data: {} });
      stream.close();
    }
  });

  it("lets the hub go of a client that has gone away", async () => {
    const { token, room } = await roomOfNewUser();
    const hub = env.CHATROOM_HUB.get(env.CHATROOM_HUB.idFromName(room.id));
    const sockets = () => runInDurableObject(hub, (_instance, state) => state.getWebSockets().length);
    const stream = await openStream("GET", `/api/chatroom/${room.id}/events`, { token });
    expect(await sockets()).toBe(1);
    stream.close();
    await vi.waitUntil(async () => (await sockets()) === 0, { timeout: 3_000, interval: 50 });
  });

  it("sends a ping comment while quiet", async () => {
    const { token, room } = await roomOfNewUser();
    const stream = await openStream("GET", `/api/chatroom/${room.id}/events`, {
      token,
      env: { ...env, LIVE_HEARTBEAT_SECONDS: "0.1" },
    });
    await expect(stream.next(400)).rejects.toThrow(/no event/);
    expect(stream.comments).toContain("ping");
    stream.close();
  });

  it("tells every stream the chatroom was deleted, then ends", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const events = await openStream("GET", `/api/chatroom/${room.id}/events`, { token });
    const prompt = await openStream("GET", `/api/chatroom/${room.id}/message/${id}/stream`, { token });
    expect((await prompt.next())?.event).toBe("prompt");
    expect((await call("DELETE", `/api/chatroom/${room.id}`, { token })).status).toBe(200);
    expect(await events.rest()).toEqual([{ id: expect.any(String), event: "deleted", data: { chatroomId: room.id } }]);
    expect((await prompt.rest()).map((e) => e.event)).toEqual(["deleted"]);
  });

  it("serves the same events over a WebSocket", async () => {
    const { token, room } = await roomOfNewUser();
    const res = await worker.fetch(
      new Request(`http://localhost/api/chatroom/${room.id}/events`, {
        headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` },
      }),
      env,
      createExecutionContext(),
    );
    expect(res.status).toBe(101);
    const socket = res.webSocket as WebSocket;
    socket.accept();
    const messages: SseEvent[] = [];
    socket.addEventListener("message", (e) => {
      messages.push(JSON.parse(e.data as string));
    });
    const id = await sendPrompt(token, room.id, "over ws");
    await vi.waitUntil(() => messages.length >= 1, { timeout: 3_000 });
    expect(messages[0]).toMatchObject({ id: expect.any(String), event: "prompt", data: { prompt: { id } } });
    socket.close();
  });

  it("keeps 50 subscribers in step: every delta delivered to each, in order", async () => {
    const { token, room } = await roomOfNewUser();
    const streams = await Promise.all(
      Array.from({ length: 50 }, () => openStream("GET", `/api/chatroom/${room.id}/events`, { token })),
    );
    const id = await sendPrompt(token, room.id);
    stubGemini(() => geminiStream(["a", "b", "c", "d", "e"], { gapMs: 60 }));
    await runConsumer([{ promptId: id }], { env: aiEnv() });
    const texts = await Promise.all(
      streams.map(async (stream) => {
        const seen: SseEvent[] = [];
        for (let e = await stream.next(); e; e = await stream.next()) {
          seen.push(e);
          if (e.event === "reply") break;
        }
        stream.close();
        return textOf(seen, id);
      }),
    );
    expect(new Set(texts)).toEqual(new Set(["abcde"]));
  });
});

describe("POST /api/chatroom/:id/message/:messageId/cancel", () => {
  it("cancels a queued prompt at once: no reply, quota given back, and the consumer then does nothing", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const res = await call("POST", `/api/chatroom/${room.id}/message/${id}/cancel`, { token });
    expect(res.status).toBe(200);
    expect(res.body.prompt).toMatchObject({ id, status: "cancelled", reply: null });
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(0);
    const calls = stubGemini(() => geminiText("too late"));
    expect(await runConsumer([{ promptId: id }], { env: aiEnv() })).toEqual({ acked: 1, retried: [] });
    expect(calls).toHaveLength(0);
  });

  it("while streaming, keeps exactly the text the deltas carried and stops the generation", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const stream = await openStream("GET", `/api/chatroom/${room.id}/message/${id}/stream`, { token });
    let cancelled: Promise<Awaited<ReturnType<typeof call>>> | undefined;
    const calls = stubGemini(() =>
      geminiStream(["First ", "second ", "third ", "fourth ", "fifth"], {
        // Wide gaps, so the cancel lands mid-stream even on a loaded machine.
        gapMs: 300,
        onChunk: (index) => {
          if (index === 1) {
            cancelled = new Promise((resolve) => setTimeout(resolve, 100)).then(() =>
              call("POST", `/api/chatroom/${room.id}/message/${id}/cancel`, { token }),
            );
          }
        },
      }),
    );
    const consumed = await runConsumer([{ promptId: id }], { env: aiEnv() });
    expect(consumed).toEqual({ acked: 1, retried: [] });
    const res = await (cancelled as Promise<Awaited<ReturnType<typeof call>>>);
    expect(res.status).toBe(200);
    const events = await stream.rest();
    const streamed = textOf(events, id);
    expect(streamed.startsWith("First second")).toBe(true);
    expect(streamed).not.toContain("fifth");
    expect(res.body.prompt).toMatchObject({ status: "cancelled", reply: { status: "cancelled", content: streamed } });
    expect(events.at(-1)?.data.prompt).toEqual(res.body.prompt);
    expect(calls[0]?.signal?.aborted).toBe(true);
    // A cancelled prompt with text keeps its quota unit.
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(1);
  });

  it("answers 409 NOT_PENDING once the prompt has settled, and 404 for another user's", async () => {
    const a = await roomOfNewUser();
    const b = await roomOfNewUser();
    const id = await sendPrompt(a.token, a.room.id);
    expectError(
      await call("POST", `/api/chatroom/${a.room.id}/message/${id}/cancel`, { token: b.token }),
      404,
      "NOT_FOUND",
    );
    stubGemini(() => geminiText("answered"));
    await runConsumer([{ promptId: id }], { env: aiEnv() });
    expectError(
      await call("POST", `/api/chatroom/${a.room.id}/message/${id}/cancel`, { token: a.token }),
      409,
      "NOT_PENDING",
    );
  });

  it("lets a cancelled prompt be retried, and its partial reply goes to Gemini as history", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id, "first question");
    await call("POST", `/api/chatroom/${room.id}/message/${id}/cancel`, { token });
    const retried = await call("POST", `/api/chatroom/${room.id}/message/${id}/retry`, { token });
    expect(retried.status).toBe(202);
    expect(retried.body.prompt).toMatchObject({ id, status: "pending", reply: null });
    stubGemini(() => geminiText("the answer"));
    await runConsumer([{ promptId: id }], { env: aiEnv() });
    const read = await call("GET", `/api/chatroom/${room.id}/message/${id}`, { token });
    expect(read.body.prompt).toMatchObject({ status: "completed", reply: { content: "the answer" } });
  });
});

describe("retryable failures mid-stream", () => {
  it("publish retrying, drop the text so far, and the next delivery starts the reply again", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const stream = await openStream("GET", `/api/chatroom/${room.id}/message/${id}/stream`, { token });
    stubGemini(
      () => geminiStream(["Half ", "an ", "answer"], { gapMs: 20, dropAfter: 2 }),
      () => geminiStream(["Whole ", "answer"], { gapMs: 20 }),
    );
    const first = await runConsumer([{ promptId: id }], { env: aiEnv(), attempts: 1 });
    expect(first.retried).toHaveLength(1);
    await runConsumer([{ promptId: id }], { env: aiEnv(), attempts: 2 });
    const events = await stream.rest();
    const names = events.map((e) => e.event);
    expect(names[0]).toBe("prompt");
    const retryAt = names.indexOf("retrying");
    expect(events[retryAt]?.data).toEqual({ promptId: id, attempt: 1, retryInSeconds: first.retried[0]?.delaySeconds });
    expect(textOf(events.slice(retryAt), id)).toBe("Whole answer");
    expect(events.at(-1)?.data.prompt.reply.content).toBe("Whole answer");
    expectLogged("warn", "Gemini call failed", { promptId: id, attempts: 1, retryable: true });
  });

  it("publish retrying on a 503 before any text", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const stream = await openStream("GET", `/api/chatroom/${room.id}/message/${id}/stream`, { token });
    expect((await stream.next())?.event).toBe("prompt");
    stubGemini(geminiOverloaded);
    await runConsumer([{ promptId: id }], { env: aiEnv(), attempts: 1 });
    expect(await stream.next()).toMatchObject({ event: "retrying", data: { promptId: id, attempt: 1 } });
    stream.close();
    expectLogged("warn", "Gemini call failed", { promptId: id, attempts: 1, retryable: true });
  });
});

describe("stream tickets", () => {
  it("open this chatroom's streams without a header, nothing else, and stop working after a password change", async () => {
    const { token, room, phoneNumber } = await roomOfNewUser();
    const other = await createChatroom(token);
    const issued = await call("POST", `/api/chatroom/${room.id}/stream-ticket`, { token });
    expect(issued.status).toBe(200);
    expect(issued.body.expiresIn).toBe(300);
    const ticket = issued.body.ticket as string;

    const stream = await openStream("GET", `/api/chatroom/${room.id}/events?ticket=${ticket}`);
    expect(stream.response.status).toBe(200);
    stream.close();
    const id = await sendPrompt(token, room.id);
    const perPrompt = await openStream("GET", `/api/chatroom/${room.id}/message/${id}/stream?ticket=${ticket}`);
    expect(perPrompt.response.status).toBe(200);
    perPrompt.close();

    expectUnauthorized(await call("GET", `/api/chatroom/${other.id}/events?ticket=${ticket}`), /another chatroom/);
    expectUnauthorized(await call("GET", `/api/chatroom/${room.id}?ticket=${ticket}`), /only opens/, {
      tokenSent: false,
    });
    expectUnauthorized(await call("GET", "/api/user/me", { token: ticket }), /token is invalid/);
    expectUnauthorized(await call("GET", `/api/chatroom/${room.id}/events?ticket=${token}`), /ticket is invalid/);

    const changed = await call("POST", "/api/auth/change-password", {
      token,
      body: { currentPassword: PASSWORD, newPassword: "an0therPass" },
    });
    expect(changed.status).toBe(200);
    expect(phoneNumber).toBeTruthy();
    expectUnauthorized(await call("GET", `/api/chatroom/${room.id}/events?ticket=${ticket}`), /ticket was revoked/);
  });

  it("stop working after logout of the token that made them, and after logout-all", async () => {
    const { token, room, phoneNumber } = await roomOfNewUser();
    const second = await call("POST", "/api/auth/login", { body: { phoneNumber, password: PASSWORD } });
    const ticketFor = async (bearer: string) =>
      (await call("POST", `/api/chatroom/${room.id}/stream-ticket`, { token: bearer })).body.ticket as string;
    const first = await ticketFor(token);
    const other = await ticketFor(second.body.authToken);
    const events = (ticket: string) => `/api/chatroom/${room.id}/events?ticket=${ticket}`;

    expect((await call("POST", "/api/auth/logout", { token })).status).toBe(200);
    expectUnauthorized(await call("GET", events(first)), /ticket was revoked with its token by logout/);
    const stillOpen = await openStream("GET", events(other));
    expect(stillOpen.response.status).toBe(200);
    stillOpen.close();

    expect((await call("POST", "/api/auth/logout-all", { token: second.body.authToken })).status).toBe(200);
    expectUnauthorized(await call("GET", events(other)), /ticket was revoked .*logout-all/);
  });

  it("answer 401, not 500, on a path that is not valid percent-encoding", async () => {
    const res = await call("GET", "/api/chatroom/%E0%A4%A/events?ticket=abc");
    expectError(res, 401, "UNAUTHORIZED");
  });

  it("are refused once expired", async () => {
    const { token, room } = await roomOfNewUser();
    const ticket = (await call("POST", `/api/chatroom/${room.id}/stream-ticket`, { token })).body.ticket as string;
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 301_000);
    expectUnauthorized(await call("GET", `/api/chatroom/${room.id}/events?ticket=${ticket}`), /ticket has expired/);
  });
});

describe("GET …/message/:messageId?wait=N", () => {
  it("is woken by the hub within ~50 ms of the reply being stored", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    stubGemini(() => geminiText("woken"));
    const waiting = call("GET", `/api/chatroom/${room.id}/message/${id}?wait=25`, { token }).then((res) => ({
      res,
      at: Date.now(),
    }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await runConsumer([{ promptId: id }], { env: aiEnv() });
    const storedAt = Date.now();
    const { res, at } = await waiting;
    expect(res.body.prompt.reply.content).toBe("woken");
    // D1 alone would only be asked again every 2 s.
    expect(at - storedAt).toBeLessThan(500);
  });
});

describe("races between deliveries, cancels and retries", () => {
  it("a cancelled run that learns of its stop after a retry never settles the retried prompt", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    let cancelledAndRetried: Promise<unknown> | undefined;
    stubGemini(
      () =>
        geminiStream(["First ", "second ", "third"], {
          gapMs: 300,
          onChunk: (index) => {
            if (index !== 0) return;
            // While the first run waits for its next piece: stop it, and retry at once.
            cancelledAndRetried = new Promise((resolve) => setTimeout(resolve, 50)).then(async () => {
              const cancelled = await call("POST", `/api/chatroom/${room.id}/message/${id}/cancel`, { token });
              expect(cancelled.body.prompt.reply).toMatchObject({ status: "cancelled", content: "First " });
              const retried = await call("POST", `/api/chatroom/${room.id}/message/${id}/retry`, { token });
              expect(retried.status).toBe(202);
            });
          },
        }),
      () => geminiText("the answer"),
    );
    expect(await runConsumer([{ promptId: id }], { env: aiEnv() })).toEqual({ acked: 1, retried: [] });
    await cancelledAndRetried;
    const afterOldRun = await call("GET", `/api/chatroom/${room.id}/message/${id}`, { token });
    expect(afterOldRun.body.prompt).toMatchObject({ status: "pending", reply: null });

    await runConsumer([{ promptId: id }], { env: aiEnv() });
    const read = await call("GET", `/api/chatroom/${room.id}/message/${id}`, { token });
    expect(read.body.prompt).toMatchObject({ status: "completed", reply: { content: "the answer" } });
    // One unit for the cancelled run (it had text), one for the retry.
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(2);
  });

  it("a delivery that finds another one writing the prompt comes back when that one's lease runs out", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    await hubOf(room.id).beginGeneration(id, "other-delivery", 1, false);
    const calls = stubGemini(() => geminiText("not now"));
    const consumed = await runConsumer([{ promptId: id }], { env: aiEnv(), attempts: 2 });
    expect(calls).toHaveLength(0);
    expect(consumed.retried).toHaveLength(1);
    // The 45 s lease, plus a second: not the usual back-off (25 s after a second attempt).
    expect(consumed.retried[0]?.delaySeconds).toBeGreaterThanOrEqual(45);
    expect(consumed.retried[0]?.delaySeconds).toBeLessThanOrEqual(46);
  });

  it("taking over from a dead generation tells subscribers to drop the text it published", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const hub = hubOf(room.id);
    await hub.beginGeneration(id, "dead-delivery", 1, false);
    await hub.pushDelta(id, "dead-delivery", "Half ");
    const stream = await openStream("GET", `/api/chatroom/${room.id}/message/${id}/stream`, { token });
    expect((await stream.next())?.event).toBe("prompt");
    expect(await stream.next()).toMatchObject({ event: "delta", data: { text: "Half " } });
    // The dead delivery was last heard of a minute ago: its lease has run out.
    await runInDurableObject(hub, (_instance, state) => {
      state.storage.sql.exec("UPDATE prompts SET seen_at = seen_at - 60000 WHERE id = ?", id);
    });
    stubGemini(() => geminiStream(["Whole ", "answer"]));
    await runConsumer([{ promptId: id }], { env: aiEnv(), attempts: 2 });
    const events = await stream.rest();
    expect(events[0]).toMatchObject({ event: "retrying", data: { promptId: id, attempt: 1, retryInSeconds: 0 } });
    expect(textOf(events, id)).toBe("Whole answer");
    expect(events.at(-1)?.data.prompt.reply.content).toBe("Whole answer");
  });

  it("a generation begun after the hub saw the prompt settle is told so, and publishes nothing", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    stubGemini(() => geminiText("answered"));
    await runConsumer([{ promptId: id }], { env: aiEnv() });
    const hub = hubOf(room.id);
    expect(await hub.beginGeneration(id, "late-delivery", 2, false)).toEqual({ stop: false, settled: true });
    expect(await hub.isGenerating(id)).toBe(false);
  });

  /** The hub never hears a send's or retry's own announcement, as when the consumer reaches it first. */
  const unannounced = (): Env => {
    const wrap = (stub: object) =>
      new Proxy(stub, {
        get: (target, name) => {
          if (name === "then") return undefined;
          if (name === "publishPrompt") return () => Promise.resolve();
          // biome-ignore lint/suspicious/noExplicitAny: forwards any RPC call to the real hub.
          return (...args: unknown[]) => (target as any)[name](...args);
        },
      });
    return {
      ...aiEnv(),
      CHATROOM_HUB: {
        idFromName: env.CHATROOM_HUB.idFromName.bind(env.CHATROOM_HUB),
        get: (id: DurableObjectId) => wrap(env.CHATROOM_HUB.get(id)),
      },
    } as unknown as Env;
  };

  it("a generation that reaches the hub before the send's announcement announces the prompt first, and the late announcement does not stop it", async () => {
    const { token, room } = await roomOfNewUser();
    const live = await openStream("GET", `/api/chatroom/${room.id}/events`, { token });
    const sent = await call("POST", `/api/chatroom/${room.id}/message`, {
      token,
      body: { userMessage: "Quick" },
      env: unannounced(),
    });
    expect(sent.status).toBe(202);
    const prompt = sent.body.prompt;
    let lateAnnouncement: Promise<unknown> | undefined;
    stubGemini(() =>
      geminiStream(["One ", "two ", "three."], {
        gapMs: 50,
        onChunk: (index) => {
          if (index === 0) lateAnnouncement = hubOf(room.id).publishPrompt(prompt, 0);
        },
      }),
    );
    await runConsumer([{ promptId: prompt.id }], { env: aiEnv() });
    await lateAnnouncement;
    const events: SseEvent[] = [];
    for (let event = await live.next(); event; event = await live.next()) {
      events.push(event);
      if (event.event === "reply") break;
    }
    live.close();
    expect(events[0]?.event).toBe("prompt");
    expect(events[0]).toMatchObject({
      event: "prompt",
      data: { prompt: { ...prompt, status: "pending", reply: null } },
    });
    expect(events.filter((e) => e.event === "prompt")).toHaveLength(1);
    expect(textOf(events, prompt.id)).toBe("One two three.");
    expect(events.at(-1)).toMatchObject({ event: "reply", data: { prompt: { status: "completed" } } });
  });

  it("a retried prompt whose generation reaches the hub before the retry's announcement is answered, not left cancelled", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    // Cancelled while still queued: the hub remembers the first run as cancelled.
    expect((await call("POST", `/api/chatroom/${room.id}/message/${id}/cancel`, { token })).status).toBe(200);
    const live = await openStream("GET", `/api/chatroom/${room.id}/events`, { token });
    const retried = await call("POST", `/api/chatroom/${room.id}/message/${id}/retry`, {
      token,
      env: unannounced(),
    });
    expect(retried.status).toBe(202);
    stubGemini(() => geminiStream(["The ", "answer"]));
    expect(await runConsumer([{ promptId: id }], { env: aiEnv() })).toEqual({ acked: 1, retried: [] });
    // The retry's announcement, arriving last, changes nothing.
    await hubOf(room.id).publishPrompt(retried.body.prompt, 1);
    const events: SseEvent[] = [];
    for (let event = await live.next(); event; event = await live.next()) {
      events.push(event);
      if (event.event === "reply") break;
    }
    live.close();
    expect(events[0]).toMatchObject({ event: "prompt", data: { prompt: { id, status: "pending", reply: null } } });
    expect(textOf(events, id)).toBe("The answer");
    expect(events.at(-1)).toMatchObject({ event: "reply", data: { prompt: { status: "completed" } } });
    const read = await call("GET", `/api/chatroom/${room.id}/message/${id}`, { token });
    expect(read.body.prompt).toMatchObject({ status: "completed", reply: { content: "The answer" } });
  });

  it("a cancel of an earlier run does not freeze the run after it", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const hub = hubOf(room.id);
    await hub.beginGeneration(id, "second-run", 1, false, undefined, 1);
    expect(await hub.cancel(id, 0)).toEqual({ settled: true });
    expect(await hub.isGenerating(id)).toBe(true);
    expect(await hub.pushDelta(id, "second-run", "still going")).toEqual({ stop: false });
  });

  it("streams a send from D1 when the chatroom's hub cannot be reached", async () => {
    const { token, room } = await roomOfNewUser();
    const down = () => Promise.reject(new Error("hub unreachable"));
    const unreachable = new Proxy({}, { get: (_target, name) => (name === "then" ? undefined : down) });
    const hubless: Env = {
      ...aiEnv(),
      CHATROOM_HUB: { idFromName: env.CHATROOM_HUB.idFromName.bind(env.CHATROOM_HUB), get: () => unreachable },
    } as unknown as Env;
    const stream = await openStream("POST", `/api/chatroom/${room.id}/message`, {
      token,
      body: { userMessage: "Hello" },
      env: hubless,
    });
    expect(stream.response.status).toBe(200);
    const prompt = await stream.next();
    expect(prompt).toMatchObject({ event: "prompt", data: { prompt: { status: "pending" } } });
    stubGemini(() => geminiText("answered without a hub"));
    await runConsumer([{ promptId: prompt?.data.prompt.id }], { env: hubless });
    const events = await stream.rest(5_000);
    expect(events.at(-1)).toMatchObject({
      event: "reply",
      data: { prompt: { status: "completed", reply: { content: "answered without a hub" } } },
    });
    // Each hub call that failed is logged, and none of them failed the send or the stream.
    for (const what of ["publishPrompt", "subscribe", "publishReply"]) {
      expectLogged("error", `hub ${what} failed`, { chatroomId: room.id, error: "Error: hub unreachable" });
    }
    expectLogged("error", "hub beginGeneration failed", { promptId: prompt?.data.prompt.id });
  });
});

describe("rules pinned against mutation", () => {
  it("GET …/events answers another user's token with 404 NOT_FOUND and streams nothing of the chatroom", async () => {
    const a = await roomOfNewUser();
    const b = await roomOfNewUser();
    const stream = await openStream("GET", `/api/chatroom/${a.room.id}/events`, { token: b.token });
    expect(stream.response.status).toBe(404);
    expect(stream.response.headers.get("Content-Type")).toMatch(/^application\/json/);
    await sendPrompt(a.token, a.room.id, "for the owner only");
    expect(await stream.rest()).toEqual([]);
    // Asked again through call() for the envelope: only an answer that ends lets it read the whole body.
    expectError(await call("GET", `/api/chatroom/${a.room.id}/events`, { token: b.token }), 404, "NOT_FOUND");
  });

  it("a stream ticket is refused at once with 401 on another chatroom of the same user", async () => {
    const { token, room } = await roomOfNewUser();
    const other = await createChatroom(token);
    const ticket = (await call("POST", `/api/chatroom/${room.id}/stream-ticket`, { token })).body.ticket as string;
    const id = await sendPrompt(token, other.id);
    for (const path of [`/api/chatroom/${other.id}/events`, `/api/chatroom/${other.id}/message/${id}/stream`]) {
      const stream = await openStream("GET", `${path}?ticket=${ticket}`);
      expect(stream.response.status, path).toBe(401);
      stream.close();
      expectUnauthorized(await call("GET", `${path}?ticket=${ticket}`), /another chatroom/);
    }
  });

  it("replays after the last pruned event's id, and sends reset for the id just before it", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const { head, prunedThrough } = await runInDurableObject(hubOf(room.id), (hub, state) => {
      hub.beginGeneration(id, "busy-delivery", 1, false);
      for (let i = 0; i <= REPLAY_MAX_EVENTS; i++) hub.pushDelta(id, "busy-delivery", `w${i} `);
      const meta = (key: string) =>
        state.storage.sql.exec<{ value: number }>("SELECT value FROM meta WHERE key = ?", key).one().value;
      return { head: meta("head"), prunedThrough: meta("pruned_through") };
    });
    expect(prunedThrough).toBe(head - REPLAY_MAX_EVENTS);
    expect(prunedThrough).toBeGreaterThan(1);
    const resume = (lastEventId: number) =>
      openStream("GET", `/api/chatroom/${room.id}/events`, {
        token,
        headers: { "Last-Event-ID": formatEventId(lastEventId) },
      });
    // The client saw the last pruned event: every event after it is still held.
    const held = await resume(prunedThrough);
    expect(await held.next()).toMatchObject({ id: formatEventId(prunedThrough + 1), event: "delta" });
    held.close();
    // One id earlier, the client never saw an event that is gone.
    const gone = await resume(prunedThrough - 1);
    expect(await gone.next()).toMatchObject({ event: "reset", data: {} });
    gone.close();
  });

  it("a generation taking over from a dead one starts its text afresh, so a cancel keeps only its own", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const hub = hubOf(room.id);
    await hub.beginGeneration(id, "dead-delivery", 1, false);
    await hub.pushDelta(id, "dead-delivery", "Half ");
    // The dead delivery was last heard of a minute ago: its lease has run out.
    await runInDurableObject(hub, (_instance, state) => {
      state.storage.sql.exec("UPDATE prompts SET seen_at = seen_at - 60000 WHERE id = ?", id);
    });
    expect(await hub.beginGeneration(id, "taking-over", 2, false)).toEqual({ stop: false });
    expect(await hub.pushDelta(id, "taking-over", "Whole ")).toEqual({ stop: false });
    const cancelled = await call("POST", `/api/chatroom/${room.id}/message/${id}/cancel`, { token });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.prompt.reply).toMatchObject({ status: "cancelled", content: "Whole " });
    const read = await call("GET", `/api/chatroom/${room.id}/message/${id}`, { token });
    expect(read.body.prompt).toMatchObject({ status: "cancelled", reply: { content: "Whole " } });
  });

  it("D1 already holds the reply when a stream receives its reply event", async () => {
    const { token, room } = await roomOfNewUser();
    const id = await sendPrompt(token, room.id);
    const live = await openStream("GET", `/api/chatroom/${room.id}/events`, { token });
    // The consumer's publishReply call returns only once the test has read D1, so a store that came
    // after the announcement could not catch up in between.
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const holding = (stub: object) =>
      new Proxy(stub, {
        get: (target, name) => {
          if (name === "then") return undefined;
          return async (...args: unknown[]) => {
            // biome-ignore lint/suspicious/noExplicitAny: forwards any RPC call to the real hub.
            const result = await (target as any)[name](...args);
            if (name === "publishReply") await released;
            return result;
          };
        },
      });
    const heldEnv = {
      ...aiEnv(),
      CHATROOM_HUB: {
        idFromName: env.CHATROOM_HUB.idFromName.bind(env.CHATROOM_HUB),
        get: (hubId: DurableObjectId) => holding(env.CHATROOM_HUB.get(hubId)),
      },
    } as unknown as Env;
    stubGemini(() => geminiText("stored first"));
    const consumed = runConsumer([{ promptId: id }], { env: heldEnv });
    let reply: SseEvent | null = null;
    let read: Awaited<ReturnType<typeof call>>;
    try {
      for (let e = await live.next(); e; e = await live.next()) {
        if (e.event !== "reply") continue;
        reply = e;
        break;
      }
      read = await call("GET", `/api/chatroom/${room.id}/message/${id}`, { token });
    } finally {
      release();
      live.close();
    }
    expect(await consumed).toEqual({ acked: 1, retried: [] });
    expect(reply?.data.prompt).toMatchObject({ id, status: "completed", reply: { content: "stored first" } });
    expect(read.body.prompt).toMatchObject({ status: "completed", reply: { content: "stored first" } });
    expect(read.body.prompt).toEqual(reply?.data.prompt);
  });
});
