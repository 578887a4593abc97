import { env } from "cloudflare:test";
import { desc, eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { createDb } from "../src/db/client";
import { compiled, rowMapper, rowsOf } from "../src/db/compiled";
import { messages, users } from "../src/db/schema";
import { findUserWithQuota } from "../src/features/users/users.repo";
import { call, createChatroom, verifiedUser } from "./helpers";

describe("compiled reads (src/db/compiled.ts)", () => {
  it("return exactly what Drizzle's own query returns for the same rows, dates and nulls included", async () => {
    const { token, user } = await verifiedUser();
    const room = await createChatroom(token);
    await call("POST", `/api/chatroom/${room.id}/message`, { token, body: { userMessage: "Compiled?" } });
    const db = createDb(env.DB);

    const usersById = compiled<"id">((b) =>
      b
        .select()
        .from(users)
        .where(eq(users.id, sql.placeholder("id"))),
    );
    const fromDrizzle = await db.select().from(users).where(eq(users.id, user.id));
    const fromCompiled = rowsOf(await usersById(db, { id: user.id }).all(), rowMapper(users));
    expect(fromCompiled).toEqual(fromDrizzle);
    expect(fromCompiled[0]?.createdAt).toBeInstanceOf(Date);
    expect(fromCompiled[0]?.email).toBeNull();

    const newest = compiled<"room" | "limit">((b) =>
      b
        .select()
        .from(messages)
        .where(eq(messages.chatroomId, sql.placeholder("room")))
        .orderBy(desc(messages.id))
        .limit(sql.placeholder("limit")),
    );
    const drizzleMessages = await db
      .select()
      .from(messages)
      .where(eq(messages.chatroomId, room.id))
      .orderBy(desc(messages.id))
      .limit(5);
    const compiledMessages = rowsOf(await newest(db, { room: room.id, limit: 5 }).all(), rowMapper(messages));
    expect(compiledMessages).toHaveLength(1);
    expect(compiledMessages).toEqual(drizzleMessages);
  });

  it("bind each call's own values to SQL built once", async () => {
    const [a, b] = await Promise.all([verifiedUser(), verifiedUser()]);
    const db = createDb(env.DB);
    const now = new Date();
    const [first, second] = await Promise.all([
      findUserWithQuota(db, a.user.id, "2026-01-01", now),
      findUserWithQuota(db, b.user.id, "2026-01-01", now),
    ]);
    expect(first?.user.id).toBe(a.user.id);
    expect(second?.user.id).toBe(b.user.id);
    expect(await findUserWithQuota(db, "no-such-user", "2026-01-01", now)).toBeNull();
  });
});
