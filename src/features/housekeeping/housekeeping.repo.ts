import { type SQL, sql } from "drizzle-orm";
import { type Database, toStatement } from "../../db/client";
import { authAttempts, idempotencyKeys, messages, otps, promptUsage, stripeEvents } from "../../db/schema";

/** Rows deleted per statement, and statements per table per run: a run's work stays bounded. */
export const DELETE_BATCH = 500;
export const MAX_BATCHES = 20;

/** What is past its use, as of `now`. */
export type Retention = {
  /** OTPs created before this (they expired long ago; the hourly OTP budget looks back one hour). */
  otpsBefore: Date;
  /** Idempotency keys created before this (their replay window has passed). */
  idempotencyKeysBefore: Date;
  /** Daily prompt counts of days before this UTC day ("YYYY-MM-DD"). */
  usageDaysBefore: string;
  /** Stripe event ids handled before this (Stripe stops retrying after 3 days). */
  stripeEventsBefore: Date;
  /** Failed sign-in attempts made before this (the guessing throttle looks back 15 minutes). */
  authAttemptsBefore: Date;
};

const tables = (r: Retention): Record<string, SQL> => ({
  otps: sql`DELETE FROM ${otps} WHERE rowid IN (SELECT rowid FROM ${otps} WHERE ${otps.createdAt} < ${r.otpsBefore.getTime()} LIMIT ${DELETE_BATCH})`,
  idempotencyKeys: sql`DELETE FROM ${idempotencyKeys} WHERE rowid IN (SELECT rowid FROM ${idempotencyKeys} WHERE ${idempotencyKeys.createdAt} < ${r.idempotencyKeysBefore.getTime()} LIMIT ${DELETE_BATCH})`,
  promptUsage: sql`DELETE FROM ${promptUsage} WHERE rowid IN (SELECT rowid FROM ${promptUsage} WHERE ${promptUsage.day} < ${r.usageDaysBefore} LIMIT ${DELETE_BATCH})`,
  authAttempts: sql`DELETE FROM ${authAttempts} WHERE rowid IN (SELECT rowid FROM ${authAttempts} WHERE ${authAttempts.at} < ${r.authAttemptsBefore.getTime()} LIMIT ${DELETE_BATCH})`,
  stripeEvents: sql`DELETE FROM ${stripeEvents} WHERE rowid IN (SELECT rowid FROM ${stripeEvents} WHERE ${stripeEvents.processedAt} < ${r.stripeEventsBefore.getTime()} LIMIT ${DELETE_BATCH})`,
});

/** Deletes what is past its use, table by table, in batches of DELETE_BATCH; returns the counts. */
export async function deleteExpiredRows(db: Database, retention: Retention): Promise<Record<string, number>> {
  const deleted: Record<string, number> = {};
  for (const [table, statement] of Object.entries(tables(retention))) {
    deleted[table] = 0;
    for (let batch = 0; batch < MAX_BATCHES; batch++) {
      const result = await toStatement(db, statement).run();
      const changes = result.meta.changes ?? 0;
      deleted[table] += changes;
      if (changes < DELETE_BATCH) break;
    }
  }
  return deleted;
}

/** Prompts still pending since before `before`, oldest first. */
export async function findStalePendingPrompts(db: Database, before: Date, limit: number): Promise<string[]> {
  const rows = await db.all<{ id: string }>(
    sql`SELECT id FROM ${messages} WHERE status = 'pending' AND ${messages.updatedAt} < ${before.getTime()}
      ORDER BY ${messages.updatedAt} LIMIT ${limit}`,
  );
  return rows.map((row) => row.id);
}
