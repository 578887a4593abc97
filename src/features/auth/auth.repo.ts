import { and, desc, eq, gt, inArray, isNull, lt, or, sql } from "drizzle-orm";
import { type Database, toStatement } from "../../db/client";
import { type OtpPurpose, otps, type User, users } from "../../db/schema";

export type NewUser = Pick<
  User,
  "id" | "phoneNumber" | "email" | "fullName" | "passwordHash" | "createdAt" | "updatedAt"
>;

/** Inserts the user, or returns undefined when the phone or email is already taken (no read-then-write race). */
export async function insertUser(db: Database, values: NewUser): Promise<User | undefined> {
  const [user] = await db.insert(users).values(values).onConflictDoNothing().returning();
  return user;
}

export async function findTakenField(db: Database, phoneNumber: string, email: string | null) {
  const [taken] = await db
    .select({ phoneNumber: users.phoneNumber })
    .from(users)
    .where(email ? or(eq(users.phoneNumber, phoneNumber), eq(users.email, email)) : eq(users.phoneNumber, phoneNumber))
    .orderBy(sql`${users.phoneNumber} = ${phoneNumber} DESC`)
    .limit(1);
  if (!taken) return undefined;
  return taken.phoneNumber === phoneNumber ? "phoneNumber" : "email";
}

export async function findUserByPhone(db: Database, phoneNumber: string): Promise<User | undefined> {
  const [user] = await selectUserByPhone(db, phoneNumber);
  return user;
}

export async function findUserById(db: Database, id: string): Promise<User | undefined> {
  const [user] = await selectUserById(db, id);
  return user;
}

// The queries below are returned unawaited, so a caller can also run them in a batch; the ones that read
// return at most one row.

export function selectUserByPhone(db: Database, phoneNumber: string) {
  return db.select().from(users).where(eq(users.phoneNumber, phoneNumber)).limit(1);
}

export function selectUserById(db: Database, id: string) {
  return db.select().from(users).where(eq(users.id, id)).limit(1);
}

export async function findTokenVersion(db: Database, userId: string): Promise<number | undefined> {
  const [row] = await db.select({ tokenVersion: users.tokenVersion }).from(users).where(eq(users.id, userId));
  return row?.tokenVersion;
}

export type OtpLimits = { ttlMs: number; cooldownMs: number; windowMs: number; maxPerWindow: number };

/**
 * Stores a new OTP only if the phone's cooldown and hourly budget allow it. The check and the
 * insert are one statement, so concurrent requests cannot both slip under the limit.
 * Rows older than the window are no longer needed for limiting and are pruned in the same batch.
 */
export async function insertOtpWithinLimits(
  db: Database,
  otp: { id: string; userId: string; purpose: OtpPurpose; codeHash: string; now: Date },
  limits: OtpLimits,
): Promise<boolean> {
  const now = otp.now.getTime();
  const windowStart = now - limits.windowMs;
  const [, inserted] = await db.$client.batch([
    toStatement(
      db,
      sql`DELETE FROM ${otps} WHERE user_id = ${otp.userId} AND purpose = ${otp.purpose} AND created_at < ${windowStart}`,
    ),
    toStatement(
      db,
      sql`INSERT INTO ${otps} (id, user_id, purpose, code_hash, attempts, expires_at, created_at)
        SELECT ${otp.id}, ${otp.userId}, ${otp.purpose}, ${otp.codeHash}, 0, ${now + limits.ttlMs}, ${now}
        WHERE (SELECT count(*) FROM ${otps} WHERE user_id = ${otp.userId} AND purpose = ${otp.purpose} AND created_at > ${windowStart}) < ${limits.maxPerWindow}
          AND NOT EXISTS (SELECT 1 FROM ${otps} WHERE user_id = ${otp.userId} AND purpose = ${otp.purpose} AND created_at > ${now - limits.cooldownMs})
        RETURNING id`,
    ),
  ]);
  return inserted?.results.length === 1;
}

/** Creation times of the OTPs issued since `since`, newest first: what the rate limit is counting. */
export async function listRecentOtpTimes(db: Database, userId: string, purpose: OtpPurpose, since: Date) {
  const rows = await db
    .select({ createdAt: otps.createdAt })
    .from(otps)
    .where(and(eq(otps.userId, userId), eq(otps.purpose, purpose), gt(otps.createdAt, since)))
    .orderBy(desc(otps.createdAt));
  return rows.map((row) => row.createdAt);
}

export async function deleteOtp(db: Database, id: string) {
  await db.delete(otps).where(eq(otps.id, id));
}

/** The newest OTP for the purpose of the user with this phone. */
export function selectLatestOtp(db: Database, phoneNumber: string, purpose: OtpPurpose) {
  const owner = db.select({ id: users.id }).from(users).where(eq(users.phoneNumber, phoneNumber));
  return db
    .select()
    .from(otps)
    .where(and(inArray(otps.userId, owner), eq(otps.purpose, purpose)))
    .orderBy(desc(otps.createdAt))
    .limit(1);
}

/**
 * Spends one of the OTP's tries before the code is compared, so even concurrent guesses get no more
 * than `maxAttempts` comparisons. Returns the tries used, or undefined if none was left.
 */
export async function reserveOtpAttempt(db: Database, otpId: string, maxAttempts: number, now: Date) {
  const [row] = await db
    .update(otps)
    .set({ attempts: sql`${otps.attempts} + 1` })
    .where(and(eq(otps.id, otpId), isNull(otps.consumedAt), lt(otps.attempts, maxAttempts), gt(otps.expiresAt, now)))
    .returning({ attempts: otps.attempts });
  return row?.attempts;
}

/** Marks the OTP used. Only one caller can win, however many present the right code at once. */
export async function consumeOtp(db: Database, otpId: string, now: Date): Promise<boolean> {
  const rows = await db
    .update(otps)
    .set({ consumedAt: now })
    .where(and(eq(otps.id, otpId), isNull(otps.consumedAt), gt(otps.expiresAt, now)))
    .returning({ id: otps.id });
  return rows.length === 1;
}

/** Marks the phone verified; the query yields the user (none if gone). */
export function markPhoneVerified(db: Database, userId: string, now: Date) {
  return db
    .update(users)
    .set({ verifiedAt: sql`coalesce(${users.verifiedAt}, ${now.getTime()})`, updatedAt: now })
    .where(eq(users.id, userId))
    .returning();
}

/**
 * Stores a new password hash and bumps the token version, which revokes every token issued before.
 * A reset proves the caller holds the phone, so it also marks the phone verified. With
 * `expectedTokenVersion` the change applies only if no other change happened since that version was read.
 * The query yields the updated user, or nothing when it did not apply.
 */
export function replacePassword(
  db: Database,
  userId: string,
  passwordHash: string,
  now: Date,
  options: { markVerified: boolean; expectedTokenVersion?: number },
) {
  return db
    .update(users)
    .set({
      passwordHash,
      tokenVersion: sql`${users.tokenVersion} + 1`,
      updatedAt: now,
      ...(options.markVerified ? { verifiedAt: sql`coalesce(${users.verifiedAt}, ${now.getTime()})` } : {}),
    })
    .where(
      options.expectedTokenVersion === undefined
        ? eq(users.id, userId)
        : and(eq(users.id, userId), eq(users.tokenVersion, options.expectedTokenVersion)),
    )
    .returning();
}

/**
 * Moves the user past the token version `expectedTokenVersion` (logout-all), revoking every token issued
 * before. Conditional, like a password change: it returns the new version, or undefined when that version
 * is no longer current (the caller's token was revoked meanwhile).
 */
export async function bumpTokenVersion(db: Database, userId: string, expectedTokenVersion: number) {
  const [row] = await db
    .update(users)
    .set({ tokenVersion: sql`${users.tokenVersion} + 1` })
    .where(and(eq(users.id, userId), eq(users.tokenVersion, expectedTokenVersion)))
    .returning({ tokenVersion: users.tokenVersion });
  return row?.tokenVersion;
}
