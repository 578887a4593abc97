import { eq, sql } from "drizzle-orm";
import type { Database } from "../../db/client";
import { promptUsage, users } from "../../db/schema";
import { proCondition } from "../billing";

/** The user with today's prompt count and the Pro flag, in one query (one D1 round trip). */
export async function findUserWithQuota(db: Database, userId: string, day: string, now: Date) {
  const [row] = await db
    .select({
      user: users,
      used: sql<
        number | null
      >`(SELECT ${promptUsage.count} FROM ${promptUsage} WHERE ${promptUsage.userId} = ${users.id} AND ${promptUsage.day} = ${day})`,
      pro: sql<number>`${proCondition(userId, now)}`,
    })
    .from(users)
    .where(eq(users.id, userId));
  return row && { user: row.user, used: row.used ?? 0, pro: row.pro === 1 };
}
