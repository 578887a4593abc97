import { and, eq, exists, getTableColumns, inArray, sql } from "drizzle-orm";
import type { Database } from "../../db/client";
import { compiled, rowMapper } from "../../db/compiled";
import { authAttempts, chatrooms, promptUsage, users } from "../../db/schema";
import { phoneSubject, userSubject } from "../auth";
import { proCondition } from "../billing";

const toUser = rowMapper(users);
const userIdValue = sql.placeholder("userId");

/** Compiled once per isolate (src/db/compiled.ts): /user/me is a hot read. */
const userWithQuotaQuery = compiled<"userId" | "day" | "nowMs">((db) =>
  db
    .select({
      ...getTableColumns(users),
      used: sql`(SELECT ${promptUsage.count} FROM ${promptUsage} WHERE ${promptUsage.userId} = ${users.id} AND ${promptUsage.day} = ${sql.placeholder("day")})`.as(
        "used",
      ),
      pro: sql`${proCondition(userIdValue, sql.placeholder("nowMs"))}`.as("pro"),
    })
    .from(users)
    .where(eq(users.id, userIdValue)),
);

/** The user with today's prompt count and the Pro flag, in one query (one D1 round trip). */
export async function findUserWithQuota(db: Database, userId: string, day: string, now: Date) {
  const row = await userWithQuotaQuery(db, { userId, day, nowMs: now.getTime() }).first<
    Record<string, unknown> & { used: number | null; pro: number }
  >();
  return row && { user: toUser(row), used: row.used ?? 0, pro: row.pro === 1 };
}

/**
 * Deletes the account in one transaction, if the user is still at `tokenVersion` (a password change made
 * meanwhile wins: nothing is deleted). The user row goes and, by ON DELETE CASCADE, every row that
 * names it: OTPs, chatrooms with their messages (whose triggers take them out of the search index),
 * shares, prompt counts, idempotency keys and the subscription. The guessing throttle's attempts name the
 * user or the phone in a `subject` instead of a key, so they go by subject. Returns the ids of the
 * chatrooms that went (their hubs are told), or undefined when nothing was deleted.
 */
export async function deleteUserRows(db: Database, user: { id: string; phoneNumber: string; tokenVersion: number }) {
  const current = and(eq(users.id, user.id), eq(users.tokenVersion, user.tokenVersion));
  const [rooms, , deleted] = await db.batch([
    db.select({ id: chatrooms.id }).from(chatrooms).where(eq(chatrooms.userId, user.id)),
    db
      .delete(authAttempts)
      .where(
        and(
          inArray(authAttempts.subject, [userSubject(user.id), phoneSubject(user.phoneNumber)]),
          exists(db.select({ id: users.id }).from(users).where(current)),
        ),
      ),
    db.delete(users).where(current).returning({ id: users.id }),
  ]);
  return deleted.length === 1 ? rooms.map((room) => room.id) : undefined;
}
