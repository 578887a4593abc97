import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createDb } from "../src/db/client";
import { branchPage, branchPageStatement } from "../src/features/messages";
import {
  type CallResult,
  call,
  createChatroom,
  expectError,
  makePro,
  runConsumer,
  sendPrompt,
  verifiedUser,
} from "./helpers";
import { openStream, type SseEvent } from "./live-helpers";
import { expectLogged } from "./logs";
import { applyMigrations } from "./migrations";
import { geminiError, geminiText, stubGemini } from "./stubs";

afterEach(() => {
  vi.restoreAllMocks();
});

const aiEnv = () => ({ ...env, GEMINI_API_KEY: "test-gemini-key" });

/** A Pro user (no daily limit) with an empty chatroom. */
async function proRoom() {
  const user = await verifiedUser();
  await makePro(user.user.id);
  const room = await createChatroom(user.token);
  return { token: user.token, userId: user.user.id as string, room };
}

/** Gemini answers the prompt with `text`; returns what Gemini was sent. */
async function answer(promptId: string, text: string) {
  vi.restoreAllMocks();
  const calls = stubGemini(() => geminiText(text));
  expect(await runConsumer([{ promptId }], { env: aiEnv() })).toEqual({ acked: 1, retried: [] });
  vi.restoreAllMocks();
  return calls;
}

type Message = {
  id: string;
  role: string;
  content: string;
  parentId: string | null;
  version: { index: number; count: number };
};

const contentsOf = (res: CallResult) => (res.body.messages as Message[]).map((m) => m.content);
const branchOf = async (token: string, roomId: string) =>
  contentsOf(await call("GET", `/api/chatroom/${roomId}/messages`, { token }));
const getPrompt = (token: string, roomId: string, id: string) =>
  call("GET", `/api/chatroom/${roomId}/message/${id}`, { token });
const edit = (token: string, roomId: string, id: string, userMessage: string, headers?: Record<string, string>) =>
  call("POST", `/api/chatroom/${roomId}/message/${id}/edit`, { token, body: { userMessage }, headers });
const regenerate = (token: string, roomId: string, id: string, headers?: Record<string, string>) =>
  call("POST", `/api/chatroom/${roomId}/message/${id}/regenerate`, { token, headers });
const switchTo = (token: string, roomId: string, messageId: string) =>
  call("PUT", `/api/chatroom/${roomId}/active-branch`, { token, body: { messageId } });
const turnsSent = (calls: { body: { contents: { role: string; parts: { text: string }[] }[] } }[]) =>
  calls[0]?.body.contents.map((turn) => `${turn.role}: ${turn.parts.map((part) => part.text).join("")}`);

/** A conversation of two answered exchanges: Q1 → A1 → Q2 → A2. */
async function twoExchanges() {
  const ctx = await proRoom();
  const q1 = await sendPrompt(ctx.token, ctx.room.id, "Q1");
  await answer(q1, "A1");
  const q2 = await sendPrompt(ctx.token, ctx.room.id, "Q2");
  await answer(q2, "A2");
  const a1 = (await getPrompt(ctx.token, ctx.room.id, q1)).body.prompt.reply.id as string;
  const a2 = (await getPrompt(ctx.token, ctx.room.id, q2)).body.prompt.reply.id as string;
  return { ...ctx, q1, a1, q2, a2 };
}

/** The version of a message that has no other. */
const only = { index: 1, count: 1, previousId: null, nextId: null };

describe("the message tree", () => {
  it("links each message to the one it follows and ends the active branch at the newest", async () => {
    const { token, room, q1, a1, q2, a2 } = await twoExchanges();
    const detail = await call("GET", `/api/chatroom/${room.id}`, { token });
    expect(detail.body.chatroom.activeLeafId).toBe(a2);
    expect(
      (detail.body.chatroom.messages as Message[]).map(({ id, parentId, version }) => ({ id, parentId, version })),
    ).toEqual([
      { id: q1, parentId: null, version: only },
      { id: a1, parentId: q1, version: only },
      { id: q2, parentId: a1, version: only },
      { id: a2, parentId: q2, version: only },
    ]);
  });

  it("follows a pending prompt with the next one, and lists each prompt's reply right after it", async () => {
    const { token, room } = await proRoom();
    const q1 = await sendPrompt(token, room.id, "Q1");
    const q2 = await sendPrompt(token, room.id, "Q2");
    expect((await getPrompt(token, room.id, q2)).body.prompt.parentId).toBe(q1);
    await answer(q2, "A2");
    await answer(q1, "A1");
    // A1 is hung beside Q1 (its prompt was followed by Q2 before it came); nothing is lost.
    expect(await branchOf(token, room.id)).toEqual(["Q1", "A1", "Q2", "A2"]);
    expect((await getPrompt(token, room.id, q1)).body.prompt.reply.content).toBe("A1");
    // Paged one message at a time, the same messages in the same order, none twice.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: CallResult = await call(
        "GET",
        `/api/chatroom/${room.id}/messages?limit=1${cursor ? `&before=${cursor}` : ""}`,
        { token },
      );
      expect(res.status).toBe(200);
      seen.unshift(...contentsOf(res));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(["Q1", "A1", "Q2", "A2"]);
  });
});

describe("POST …/message/:messageId/edit", () => {
  it("adds a new version of the prompt as the active leaf, keeps the first, and sends Gemini only its own branch", async () => {
    const { token, room, q1, a1, q2 } = await twoExchanges();
    const edited = await edit(token, room.id, q2, "Q2 edited");
    expect(edited.status).toBe(202);
    expect(edited.body.prompt).toMatchObject({
      content: "Q2 edited",
      status: "pending",
      parentId: a1,
      version: { index: 2, count: 2 },
      reply: null,
    });
    expect(edited.body.usage.used).toBe(3);
    expect(await branchOf(token, room.id)).toEqual(["Q1", "A1", "Q2 edited"]);
    const calls = await answer(edited.body.prompt.id, "A2 edited");
    // The first version (Q2, A2) is newer than A1 but on another branch: Gemini never sees it.
    expect(turnsSent(calls)).toEqual(["user: Q1", "model: A1", "user: Q2 edited"]);
    expect(await branchOf(token, room.id)).toEqual(["Q1", "A1", "Q2 edited", "A2 edited"]);
    const first = await getPrompt(token, room.id, q2);
    expect(first.body.prompt).toMatchObject({ version: { index: 1, count: 2 }, reply: { content: "A2" } });
    expect(q1).toBeDefined();
  });

  it("names the versions either side of each message, so a client can step between them", async () => {
    const { token, room, q2 } = await twoExchanges();
    const second = await edit(token, room.id, q2, "Q2b");
    const third = await edit(token, room.id, q2, "Q2c");
    expect(third.body.prompt.version).toEqual({ index: 3, count: 3, previousId: second.body.prompt.id, nextId: null });
    expect((await getPrompt(token, room.id, q2)).body.prompt.version).toEqual({
      index: 1,
      count: 3,
      previousId: null,
      nextId: second.body.prompt.id,
    });
    const back = await switchTo(token, room.id, third.body.prompt.version.previousId);
    const shown = (back.body.messages as Message[]).at(-1);
    expect(shown).toMatchObject({
      id: second.body.prompt.id,
      version: { index: 2, previousId: q2, nextId: third.body.prompt.id },
    });
  });

  it("edits a first prompt into a second root version", async () => {
    const { token, room, q1 } = await twoExchanges();
    const edited = await edit(token, room.id, q1, "Q1 again");
    expect(edited.body.prompt).toMatchObject({ parentId: null, version: { index: 2, count: 2 } });
    expect(await branchOf(token, room.id)).toEqual(["Q1 again"]);
    expect(turnsSent(await answer(edited.body.prompt.id, "fresh"))).toEqual(["user: Q1 again"]);
  });

  it("answers 404 for a reply id, an unknown id, another chatroom's prompt and another user's, counting nothing", async () => {
    const { token, room, a1, q1 } = await twoExchanges();
    const other = await createChatroom(token);
    const stranger = await verifiedUser();
    for (const [who, roomId, id] of [
      [token, room.id, a1],
      [token, room.id, crypto.randomUUID()],
      [token, room.id, "not-an-id"],
      [token, other.id, q1],
      [stranger.token, room.id, q1],
    ] as const) {
      expectError(await edit(who, roomId, id, "nope"), 404, "NOT_FOUND");
    }
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(2);
  });

  it("replays a repeated Idempotency-Key without a second version", async () => {
    const { token, room, q2 } = await twoExchanges();
    const headers = { "Idempotency-Key": "edit-once" };
    const first = await edit(token, room.id, q2, "again", headers);
    const second = await edit(token, room.id, q2, "again", headers);
    expect(second.status).toBe(202);
    expect(second.headers.get("Idempotent-Replayed")).toBe("true");
    expect(second.body.prompt.id).toBe(first.body.prompt.id);
    expectError(await edit(token, room.id, q2, "something else", headers), 409, "IDEMPOTENCY_KEY_REUSED");
    expect((await getPrompt(token, room.id, q2)).body.prompt.version).toMatchObject({ index: 1, count: 2 });
  });

  it("counts against a Basic user's quota like a send", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    const q = await sendPrompt(token, room.id, "Q");
    for (let i = 0; i < 4; i++) expect((await edit(token, room.id, q, `Q${i}`)).status).toBe(202);
    expectError(await edit(token, room.id, q, "one too many"), 429, "DAILY_LIMIT_REACHED");
    expect((await getPrompt(token, room.id, q)).body.prompt.version).toMatchObject({ index: 1, count: 5 });
  });
});

describe("POST …/message/:messageId/regenerate", () => {
  it("queues a new reply version, ends the branch at the prompt meanwhile, and keeps the first reply and what followed it", async () => {
    const { token, room, q1, a1 } = await twoExchanges();
    const res = await regenerate(token, room.id, q1);
    expect(res.status).toBe(202);
    expect(res.body.prompt).toMatchObject({ id: q1, status: "pending", reply: null, version: { index: 1, count: 1 } });
    expect(res.body.usage.used).toBe(3);
    expect(await branchOf(token, room.id)).toEqual(["Q1"]);
    expect((await getPrompt(token, room.id, q1)).body.prompt.reply).toBeNull();
    expect(turnsSent(await answer(q1, "A1 again"))).toEqual(["user: Q1"]);
    const read = await getPrompt(token, room.id, q1);
    expect(read.body.prompt).toMatchObject({
      status: "completed",
      reply: { content: "A1 again", parentId: q1, version: { index: 2, count: 2 }, model: "gemini-2.5-flash" },
    });
    expect(await branchOf(token, room.id)).toEqual(["Q1", "A1 again"]);
    // The first reply and the exchange after it are one switch away.
    const back = await switchTo(token, room.id, a1);
    expect(back.status).toBe(200);
    expect(contentsOf(back)).toEqual(["Q1", "A1", "Q2", "A2"]);
    expect((back.body.messages as Message[])[1]?.version).toEqual({
      index: 1,
      count: 2,
      previousId: null,
      nextId: read.body.prompt.reply.id,
    });
    expect((await getPrompt(token, room.id, q1)).body.prompt.reply.content).toBe("A1");
  });

  it("answers 409 NOT_COMPLETED for a pending or failed prompt and 404 for a reply id, counting nothing", async () => {
    const { token, room, a2 } = await twoExchanges();
    const pending = await sendPrompt(token, room.id, "Q3");
    expectError(await regenerate(token, room.id, pending), 409, "NOT_COMPLETED");
    vi.restoreAllMocks();
    stubGemini(() => geminiError(400, "Invalid argument", "INVALID_ARGUMENT"));
    await runConsumer([{ promptId: pending }], { env: aiEnv() });
    expectLogged("warn", "Gemini call failed", { promptId: pending, retryable: false });
    expect((await getPrompt(token, room.id, pending)).body.prompt.status).toBe("failed");
    expectError(await regenerate(token, room.id, pending), 409, "NOT_COMPLETED");
    expectError(await regenerate(token, room.id, a2), 404, "NOT_FOUND");
    // Q1, Q2, Q3 counted; the failure gave Q3's unit back.
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(2);
  });

  it("replays a repeated Idempotency-Key instead of regenerating twice", async () => {
    const { token, room, q2 } = await twoExchanges();
    const headers = { "Idempotency-Key": "regen-once" };
    const first = await regenerate(token, room.id, q2, headers);
    expect(first.status).toBe(202);
    const again = await regenerate(token, room.id, q2, headers);
    expect(again.status).toBe(202);
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(3);
  });
});

describe("a regeneration cancelled before any text", () => {
  it("leaves the prompt cancelled with no reply, keeping the earlier reply as a version only", async () => {
    const { token, room, q1, a1, q2 } = await twoExchanges();
    expect((await regenerate(token, room.id, q2)).status).toBe(202);
    expect((await call("POST", `/api/chatroom/${room.id}/message/${q2}/cancel`, { token })).status).toBe(200);
    const read = await getPrompt(token, room.id, q2);
    expect(read.body.prompt).toMatchObject({ status: "cancelled", reply: null });
    expect(await branchOf(token, room.id)).toEqual(["Q1", "A1", "Q2"]);
    // The next prompt follows it, and Gemini is not sent Q2 without an answer.
    const q3 = await sendPrompt(token, room.id, "Q3");
    expect(turnsSent(await answer(q3, "A3"))).toEqual(["user: Q1", "model: A1", "user: Q3"]);
    expect(a1).toBeDefined();
    expect(q1).toBeDefined();
  });
});

describe("GET …/messages with a stale cursor", () => {
  it("answers 400 when the cursor's message is gone or in another chatroom, never an empty start", async () => {
    const { token, room, q1 } = await twoExchanges();
    const other = await createChatroom(token);
    expectError(
      await call("GET", `/api/chatroom/${other.id}/messages?before=${q1}`, { token }),
      400,
      "VALIDATION_FAILED",
    );
    expectError(
      await call("GET", `/api/chatroom/${room.id}/messages?before=${crypto.randomUUID()}`, { token }),
      400,
      "VALIDATION_FAILED",
    );
  });
});

describe("POST …/message/:messageId/retry in a tree", () => {
  it("drops the failure note and keeps what was sent after it on the branch", async () => {
    const { token, room } = await proRoom();
    const q1 = await sendPrompt(token, room.id, "Q1");
    vi.restoreAllMocks();
    stubGemini(() => geminiError(400, "Invalid argument", "INVALID_ARGUMENT"));
    await runConsumer([{ promptId: q1 }], { env: aiEnv() });
    expectLogged("warn", "Gemini call failed", { promptId: q1, retryable: false });
    const q2 = await sendPrompt(token, room.id, "Q2");
    expect((await call("POST", `/api/chatroom/${room.id}/message/${q1}/retry`, { token })).status).toBe(202);
    // Q2 followed the note; with the note gone it follows Q1, as if sent while Q1 was pending.
    expect((await getPrompt(token, room.id, q2)).body.prompt.parentId).toBe(q1);
    await answer(q1, "A1");
    expect(await branchOf(token, room.id)).toEqual(["Q1", "A1", "Q2"]);
  });
});

describe("PUT /api/chatroom/:id/active-branch", () => {
  it("runs the branch through the message, down to the newest leaf beneath it", async () => {
    const { token, room, q2, a2 } = await twoExchanges();
    const edited = await edit(token, room.id, q2, "Q2b");
    await answer(edited.body.prompt.id, "A2b");
    const res = await switchTo(token, room.id, q2);
    expect(res.status).toBe(200);
    expect(res.body.chatroom.activeLeafId).toBe(a2);
    expect(contentsOf(res)).toEqual(["Q1", "A1", "Q2", "A2"]);
    expect(await branchOf(token, room.id)).toEqual(["Q1", "A1", "Q2", "A2"]);
    // The next send goes after the branch now shown.
    const q3 = await sendPrompt(token, room.id, "Q3");
    expect((await getPrompt(token, room.id, q3)).body.prompt.parentId).toBe(a2);
    expect(turnsSent(await answer(q3, "A3"))).toEqual(["user: Q1", "model: A1", "user: Q2", "model: A2", "user: Q3"]);
  });

  it("answers 404 for an unknown, malformed or foreign message, and another user's chatroom", async () => {
    const { token, room, q1 } = await twoExchanges();
    const other = await createChatroom(token);
    const stranger = await verifiedUser();
    expectError(await switchTo(token, room.id, crypto.randomUUID()), 404, "NOT_FOUND");
    expectError(await switchTo(token, room.id, "x'; DROP TABLE messages; --"), 404, "NOT_FOUND");
    expectError(await switchTo(token, other.id, q1), 404, "NOT_FOUND");
    expectError(await switchTo(stranger.token, room.id, q1), 404, "NOT_FOUND");
    expectError(
      await call("PUT", `/api/chatroom/${room.id}/active-branch`, { token, body: {} }),
      400,
      "VALIDATION_FAILED",
    );
  });
});

describe("live events of the tree", () => {
  it("tells every device where the branch ends after a send, an edit, a regeneration and a switch", async () => {
    const { token, room, q1, q2, a2 } = await twoExchanges();
    const stream = await openStream("GET", `/api/chatroom/${room.id}/events`, { token });
    const edited = await edit(token, room.id, q2, "Q2b");
    await answer(edited.body.prompt.id, "A2b");
    await regenerate(token, room.id, q1);
    await answer(q1, "A1b");
    await switchTo(token, room.id, a2);
    const events: SseEvent[] = [];
    for (let i = 0; i < 9; i++) {
      const event = await stream.next();
      if (event) events.push(event);
    }
    stream.close();
    expect(events.map((event) => event.event)).toEqual([
      "prompt",
      "branch",
      "delta",
      "reply",
      "prompt",
      "branch",
      "delta",
      "reply",
      "branch",
    ]);
    expect(events[0]?.data.prompt).toMatchObject({
      parentId: edited.body.prompt.parentId,
      version: { index: 2, count: 2 },
    });
    expect(events[1]?.data).toEqual({ activeLeafId: edited.body.prompt.id });
    expect(events[4]?.data.prompt).toMatchObject({ id: q1, status: "pending", reply: null });
    expect(events[5]?.data).toEqual({ activeLeafId: q1 });
    expect(events[7]?.data.prompt.reply).toMatchObject({ content: "A1b", version: { index: 2, count: 2 } });
    expect(events[8]?.data).toEqual({ activeLeafId: a2 });
  });
});

describe("migration 0008 (message tree)", () => {
  it("turns every existing chatroom into a single-branch tree with nothing lost, each prompt followed by its reply", async () => {
    const db = env.MIGRATION_DB;
    const before = env.TEST_MIGRATIONS.filter((migration) => migration.name < "0008");
    await applyMigrations(db, before);
    const at = Date.parse("2026-11-01T00:00:00Z");
    const id = (n: number) => `019a4000-0000-7000-8000-${String(n).padStart(12, "0")}`;
    const rows: [number, "user" | "assistant", string, number | null, number][] = [
      // [id, role, status, replyTo, incarnation]: an exchange; two prompts sent before either reply came,
      // answered out of order; a retried prompt; a failure; a prompt cancelled before any text; a last exchange.
      [1, "user", "completed", null, 0],
      [2, "assistant", "completed", 1, 0],
      [3, "user", "completed", null, 0],
      [4, "user", "completed", null, 0],
      [5, "assistant", "completed", 4, 0],
      [6, "assistant", "completed", 3, 0],
      [7, "user", "completed", null, 2],
      [8, "assistant", "completed", 7, 0],
      [9, "user", "failed", null, 0],
      [10, "assistant", "failed", 9, 0],
      [11, "user", "cancelled", null, 0],
      [12, "user", "completed", null, 0],
      [13, "assistant", "completed", 12, 0],
    ];
    await db.batch([
      db
        .prepare(
          "INSERT INTO users (id, phone_number, password_hash, created_at, updated_at) VALUES ('u1', '+910000000001', 'x', ?1, ?1)",
        )
        .bind(at),
      db
        .prepare(
          "INSERT INTO chatrooms (id, user_id, name, name_key, created_at, updated_at) VALUES ('r1', 'u1', 'Old', 'old', ?1, ?1)",
        )
        .bind(at),
      ...rows.map(([n, role, status, replyTo, incarnation]) =>
        db
          .prepare(
            "INSERT INTO messages (id, chatroom_id, user_id, role, content, status, reply_to, incarnation, created_at, updated_at) VALUES (?1, 'r1', 'u1', ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
          )
          .bind(id(n), role, `m${n}`, status, replyTo === null ? null : id(replyTo), incarnation, at + n),
      ),
    ]);
    await applyMigrations(db, env.TEST_MIGRATIONS);

    // Every message, in order; the one change is that a reply answering an earlier prompt than the one
    // before it (m6, sent as m4's reply came first) now follows its own prompt.
    const expected = ["m1", "m2", "m3", "m6", "m4", "m5", "m7", "m8", "m9", "m10", "m11", "m12", "m13"];
    const whole = branchPage(await branchPageStatement(createDb(db), "r1", 100).all(), 100);
    expect(whole.messages.map((m) => m.content)).toEqual(expected);
    expect(whole.nextCursor).toBeNull();
    for (const m of whole.messages) {
      expect(m.version).toEqual({ index: 1, count: 1, previousId: null, nextId: null });
      if (m.role === "assistant") expect(m.parentId).toBe(m.replyTo);
    }
    // Page by page too, every size.
    for (const limit of [1, 2, 3, 5]) {
      const seen: string[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = branchPage(await branchPageStatement(createDb(db), "r1", limit, cursor).all(), limit);
        seen.unshift(...page.messages.map((m) => m.content));
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
      expect(seen, `limit ${limit}`).toEqual(expected);
    }
    const room = await db.prepare("SELECT active_leaf_id FROM chatrooms WHERE id = 'r1'").first();
    expect(room?.active_leaf_id).toBe(id(13));
    // A reply records the run that wrote it, so the retried prompt's reply stays its one reply.
    const reply = await db.prepare("SELECT incarnation FROM messages WHERE id = ?").bind(id(8)).first();
    expect(reply?.incarnation).toBe(2);
  });
});
