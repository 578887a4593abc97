import { and, desc, eq, gt, inArray, lte, sql } from "drizzle-orm";
import type { BatchItem, BatchResponse } from "drizzle-orm/batch";
import type { Database } from "../../db/client";
import { authAttempts } from "../../db/schema";

export type AttemptRecord = { id: string; subject: string; ip: string | null; at: Date };
export type AttemptLimits = { windowMs: number; perSubject: number; perIp: number };

// Each reservation removes at most this many expired rows, more than it adds, so the table stays small.
const PRUNE_BATCH = 20;

const since = (attempt: AttemptRecord, limits: AttemptLimits) => attempt.at.getTime() - limits.windowMs;

function pruneExpired(db: Database, attempt: AttemptRecord, limits: AttemptLimits) {
  const expired = db
    .select({ id: authAttempts.id })
    .from(authAttempts)
    .where(lte(authAttempts.at, new Date(since(attempt, limits))))
    .orderBy(authAttempts.at)
    .limit(PRUNE_BATCH);
  return db.delete(authAttempts).where(inArray(authAttempts.id, expired));
}

/** Stores the attempt only if its subject and its IP are both below their limits: one statement, so atomic. */
function reserve(db: Database, attempt: AttemptRecord, limits: AttemptLimits) {
  const from = since(attempt, limits);
  const ipBelowLimit =
    attempt.ip === null
      ? sql`1`
      : sql`(SELECT count(*) FROM ${authAttempts} WHERE ip = ${attempt.ip} AND at > ${from}) < ${limits.perIp}`;
  return db
    .insert(authAttempts)
    .select(
      sql`SELECT ${attempt.id}, ${attempt.subject}, ${attempt.ip}, ${attempt.at.getTime()}
        WHERE (SELECT count(*) FROM ${authAttempts} WHERE subject = ${attempt.subject} AND at > ${from}) < ${limits.perSubject}
          AND ${ipBelowLimit}`,
    )
    .returning({ id: authAttempts.id });
}

/**
 * Reserves the attempt and runs `queries` (the reads that load what the attempt is checked against) in the
 * same batch: one round trip, one transaction.
 */
export async function reserveAttemptWith<T extends readonly [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]]>(
  db: Database,
  attempt: AttemptRecord,
  limits: AttemptLimits,
  queries: T,
): Promise<{ reserved: boolean; results: BatchResponse<T> }> {
  const [, reserved, ...results] = await db.batch([
    pruneExpired(db, attempt, limits),
    reserve(db, attempt, limits),
    ...queries,
  ]);
  return { reserved: (reserved as unknown[]).length === 1, results: results as unknown as BatchResponse<T> };
}

/** Deletes a successful attempt, in the same batch as `query` (the success's own write). */
export async function releaseAttemptWith<T extends BatchItem<"sqlite">>(
  db: Database,
  attemptId: string,
  query: T,
): Promise<Awaited<T>> {
  const [result] = await db.batch([query, db.delete(authAttempts).where(eq(authAttempts.id, attemptId))]);
  return result as Awaited<T>;
}

export async function releaseAttempt(db: Database, attemptId: string) {
  await db.delete(authAttempts).where(eq(authAttempts.id, attemptId));
}

/**
 * When the attempt's subject and IP drop below their limits again: the moment the attempt that keeps each
 * at its limit leaves the window. Undefined if neither is at its limit any more.
 */
export async function findAttemptsAllowedAt(db: Database, attempt: AttemptRecord, limits: AttemptLimits) {
  const from = new Date(since(attempt, limits));
  const limiting = (where: ReturnType<typeof and>, limit: number) =>
    db
      .select({ at: authAttempts.at })
      .from(authAttempts)
      .where(and(where, gt(authAttempts.at, from)))
      .orderBy(desc(authAttempts.at))
      .limit(1)
      .offset(limit - 1);
  const [bySubject, byIp] = await db.batch([
    limiting(eq(authAttempts.subject, attempt.subject), limits.perSubject),
    attempt.ip === null
      ? db.select({ at: authAttempts.at }).from(authAttempts).where(sql`0`)
      : limiting(eq(authAttempts.ip, attempt.ip), limits.perIp),
  ]);
  const times = [...bySubject, ...byIp].map((row) => row.at.getTime() + limits.windowMs);
  return times.length === 0 ? undefined : new Date(Math.max(...times));
}
