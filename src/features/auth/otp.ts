import type { Database } from "../../db/client";
import type { OtpPurpose, User } from "../../db/schema";
import { hmacSha256, timingSafeEqualText, toHex } from "../../lib/crypto";
import { AppError, tooManyRequests } from "../../lib/errors";
import {
  consumeOtp,
  deleteOtp,
  findUserByPhone,
  insertOtpWithinLimits,
  listRecentOtpTimes,
  type OtpLimits,
  reserveOtpAttempt,
  selectLatestOtp,
  selectUserByPhone,
} from "./auth.repo";
import { type Attempt, reserveAttempt } from "./throttle";

export const OTP_TTL_SECONDS = 300;
export const OTP_MAX_ATTEMPTS = 5;
const LIMITS: OtpLimits = { ttlMs: OTP_TTL_SECONDS * 1000, cooldownMs: 30_000, windowMs: 3_600_000, maxPerWindow: 5 };
const WEBHOOK_TIMEOUT_MS = 5_000;

const otpInvalid = () => new AppError(400, "OTP_INVALID", "The OTP is wrong or has already been used");
const otpExpired = () => new AppError(400, "OTP_EXPIRED", "The OTP has expired; request a new one");
const otpAttemptsExceeded = () =>
  new AppError(429, "OTP_ATTEMPTS_EXCEEDED", "Too many wrong tries; this OTP no longer works, request a new one");

/** Six uniformly distributed digits from the CSPRNG (rejection sampling avoids modulo bias). */
export function generateOtp(): string {
  const limit = 2 ** 32 - (2 ** 32 % 1_000_000);
  for (;;) {
    const [value = limit] = crypto.getRandomValues(new Uint32Array(1));
    if (value < limit) return String(value % 1_000_000).padStart(6, "0");
  }
}

/** Keyed hash bound to user and purpose: a stored hash is useless without the secret, and for another flow. */
async function hashOtp(env: Env, userId: string, purpose: OtpPurpose, code: string) {
  return toHex(await hmacSha256(env.JWT_SECRET, `otp:${purpose}:${userId}:${code}`));
}

/** Issues an OTP for the account with this phone; 404 USER_NOT_FOUND when there is none. */
export async function issueOtpForPhone(env: Env, db: Database, phoneNumber: string, purpose: OtpPurpose) {
  const user = await findUserByPhone(db, phoneNumber);
  if (!user) throw new AppError(404, "USER_NOT_FOUND", "No account with this phone number");
  return issueOtp(env, db, user, purpose);
}

async function issueOtp(env: Env, db: Database, user: User, purpose: OtpPurpose) {
  // Anything but the mocked "response" delivery is the SMS relay; without one no OTP is made at all.
  if (env.OTP_DELIVERY !== "response" && !env.OTP_WEBHOOK_URL) {
    console.error(JSON.stringify({ level: "error", message: "OTP_WEBHOOK_URL is not set; OTPs cannot be delivered" }));
    throw new AppError(503, "OTP_DELIVERY_NOT_CONFIGURED", "OTP delivery is not configured on this server");
  }
  const now = new Date();
  const code = generateOtp();
  const id = crypto.randomUUID();
  const codeHash = await hashOtp(env, user.id, purpose, code);
  if (!(await insertOtpWithinLimits(db, { id, userId: user.id, purpose, codeHash, now }, LIMITS))) {
    const retryAfter = await secondsUntilNextOtp(db, user.id, purpose, now);
    throw tooManyRequests("OTP_RATE_LIMITED", "Too many OTP requests; try again later", retryAfter);
  }
  if (env.OTP_DELIVERY === "response") return { otp: code, expiresInSeconds: OTP_TTL_SECONDS };
  try {
    await deliverByWebhook(env, { phoneNumber: user.phoneNumber, otp: code, purpose });
  } catch (err) {
    // An OTP nobody received must not count against the caller's limits.
    await deleteOtp(db, id);
    throw err;
  }
  return { expiresInSeconds: OTP_TTL_SECONDS };
}

async function secondsUntilNextOtp(db: Database, userId: string, purpose: OtpPurpose, now: Date) {
  const times = await listRecentOtpTimes(db, userId, purpose, new Date(now.getTime() - LIMITS.windowMs));
  const newest = times[0]?.getTime() ?? 0;
  const oldestCounted = times[LIMITS.maxPerWindow - 1]?.getTime() ?? 0;
  const readyAt = Math.max(newest + LIMITS.cooldownMs, oldestCounted + LIMITS.windowMs);
  return (readyAt - now.getTime()) / 1000;
}

async function deliverByWebhook(env: Env, payload: { phoneNumber: string; otp: string; purpose: OtpPurpose }) {
  const failed = new AppError(502, "OTP_DELIVERY_FAILED", "The OTP could not be delivered; try again shortly");
  const response = await fetch(env.OTP_WEBHOOK_URL, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
    signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
  }).catch(() => undefined);
  if (!response?.ok) {
    console.error(JSON.stringify({ level: "error", message: "OTP webhook failed", status: response?.status }));
    throw failed;
  }
}

/**
 * Checks a code against the newest OTP for this phone and purpose and uses it up; returns its user. The
 * guessing throttle counts the attempt in the same round trip that loads the OTP; the caller forgets it
 * on success.
 */
export async function redeemOtp(
  env: Env,
  db: Database,
  attempt: Attempt,
  phoneNumber: string,
  purpose: OtpPurpose,
  code: string,
) {
  const now = new Date();
  const [[user], [otp]] = await reserveAttempt(db, attempt, [
    selectUserByPhone(db, phoneNumber),
    selectLatestOtp(db, phoneNumber, purpose),
  ]);
  if (!user || !otp || otp.consumedAt) throw otpInvalid();
  if (otp.attempts >= OTP_MAX_ATTEMPTS) throw otpAttemptsExceeded();
  if (otp.expiresAt <= now) throw otpExpired();
  const attempts = await reserveOtpAttempt(db, otp.id, OTP_MAX_ATTEMPTS, now);
  if (attempts === undefined) throw otpInvalid();
  const matches = timingSafeEqualText(await hashOtp(env, user.id, purpose, code), otp.codeHash);
  if (!matches) throw attempts >= OTP_MAX_ATTEMPTS ? otpAttemptsExceeded() : otpInvalid();
  if (!(await consumeOtp(db, otp.id, now))) throw otpInvalid();
  return user;
}
