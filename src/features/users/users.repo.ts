import { eq, getTableColumns, sql } from "drizzle-orm";
import type { Database } from "../../db/client";
import { compiled, rowMapper } from "../../db/compiled";
import { promptUsage, users } from "../../db/schema";
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
