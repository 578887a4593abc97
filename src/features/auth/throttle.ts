import type { BatchItem, BatchResponse } from "drizzle-orm/batch";
import type { Database } from "../../db/client";
import { tooManyRequests } from "../../lib/errors";
import {
  type AttemptLimits,
  type AttemptRecord,
  findAttemptsAllowedAt,
  releaseAttempt,
  releaseAttemptWith,
  reserveAttemptWith,
} from "./throttle.repo";

/**
 * The contract's guessing throttle: 10 failed attempts per phone number (change-password: per user), and
 * AUTH_FAILURES_PER_IP per client IP, within any 15 minutes. An attempt is stored before the password or
 * code is compared and deleted if it succeeds, so concurrent guesses are counted while they are checked.
 */
export const ATTEMPT_WINDOW_MS = 15 * 60_000;
export const FAILURES_PER_SUBJECT = 10;
const DEFAULT_FAILURES_PER_IP = 100;

export type Attempt = AttemptRecord & { limits: AttemptLimits };

export const phoneSubject = (phoneNumber: string) => `phone:${phoneNumber}`;
export const userSubject = (userId: string) => `user:${userId}`;

function failuresPerIp(env: Env): number {
  const limit = Number(env.AUTH_FAILURES_PER_IP);
  return Number.isInteger(limit) && limit > 0 ? limit : DEFAULT_FAILURES_PER_IP;
}

/**
 * The address failures are counted under. An IPv6 client usually holds a whole /64, so that is the unit;
 * an IPv4 address counts alone. Without CF-Connecting-IP (local development) there is no per-IP limit.
 */
export function clientNetwork(header: string | undefined): string | null {
  const ip = header?.trim().toLowerCase();
  if (!ip) return null;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(ip)?.[1];
  if (mapped) return mapped;
  if (!ip.includes(":")) return ip.slice(0, 64);
  const [head = "", tail] = ip.split("::");
  const groups = head ? head.split(":") : [];
  if (tail !== undefined) {
    const tailGroups = tail ? tail.split(":") : [];
    groups.push(...Array<string>(Math.max(0, 8 - groups.length - tailGroups.length)).fill("0"), ...tailGroups);
  }
  const prefix = groups.slice(0, 4).map((group) => (group.replace(/^0+/, "") || "0").slice(0, 4));
  return `${prefix.join(":")}::/64`;
}

export function startAttempt(env: Env, connectingIp: string | undefined, subject: string): Attempt {
  return {
    id: crypto.randomUUID(),
    subject,
    ip: clientNetwork(connectingIp),
    at: new Date(),
    limits: { windowMs: ATTEMPT_WINDOW_MS, perSubject: FAILURES_PER_SUBJECT, perIp: failuresPerIp(env) },
  };
}

/**
 * Counts the attempt and runs `queries` in the same round trip; answers 429 TOO_MANY_ATTEMPTS, before any
 * password or code is compared, when the subject or the IP is at its limit.
 */
export async function reserveAttempt<T extends readonly [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]]>(
  db: Database,
  attempt: Attempt,
  queries: T,
): Promise<BatchResponse<T>> {
  const { reserved, results } = await reserveAttemptWith(db, attempt, attempt.limits, queries);
  if (reserved) return results;
  const allowedAt = await findAttemptsAllowedAt(db, attempt, attempt.limits);
  const seconds = allowedAt ? (allowedAt.getTime() - attempt.at.getTime()) / 1000 : 1;
  throw tooManyRequests("TOO_MANY_ATTEMPTS", "Too many failed attempts; try again later", seconds);
}

/** The attempt was no failure (it succeeded): forgets it in the same batch as `query`, the success's own write. */
export function forgetAttemptWith<T extends BatchItem<"sqlite">>(db: Database, attempt: Attempt, query: T) {
  return releaseAttemptWith(db, attempt.id, query);
}

/** The attempt was no failure and nothing else is written: forgets it after the response. */
export function forgetAttempt(db: Database, ctx: { waitUntil(promise: Promise<unknown>): void }, attempt: Attempt) {
  ctx.waitUntil(
    releaseAttempt(db, attempt.id).catch((err: unknown) => {
      const error = err instanceof Error ? err.message : String(err);
      console.error(JSON.stringify({ level: "error", message: "Forgetting a successful auth attempt failed", error }));
    }),
  );
}
