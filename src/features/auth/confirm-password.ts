import type { Database } from "../../db/client";
import type { User } from "../../db/schema";
import { AppError, unauthorized } from "../../lib/errors";
import { selectUserById } from "./auth.repo";
import { verifyPassword } from "./password";
import { forgetAttempt, reserveAttempt, startAttempt, userSubject } from "./throttle";

export type PasswordConfirmation = {
  env: Env;
  db: Database;
  ctx: { waitUntil(promise: Promise<unknown>): void };
  /** CF-Connecting-IP of the request. */
  connectingIp: string | undefined;
  userId: string;
  /** The version of the token the request came with. */
  tokenVersion: number;
};

/**
 * The signed-in user's password asked for again before an action that cannot be undone (delete-account).
 * Counted by the guessing throttle as change-password is (per user and per IP): a wrong password is a
 * failed attempt, 429 TOO_MANY_ATTEMPTS past the limit. Returns the user as D1 has them now.
 */
export async function confirmPassword(request: PasswordConfirmation, password: string): Promise<User> {
  const { db, ctx } = request;
  const attempt = startAttempt(request.env, request.connectingIp, userSubject(request.userId));
  const [[user]] = await reserveAttempt(db, attempt, [selectUserById(db, request.userId)]);
  // KV may not have seen a revocation made elsewhere a moment ago; D1 has.
  if (!user || user.tokenVersion !== request.tokenVersion) {
    forgetAttempt(db, ctx, attempt);
    throw unauthorized("revoked");
  }
  if (!(await verifyPassword(password, user.passwordHash))) {
    throw new AppError(401, "INVALID_CREDENTIALS", "The password is incorrect", undefined, {
      "WWW-Authenticate": 'Bearer realm="api"',
    });
  }
  forgetAttempt(db, ctx, attempt);
  return user;
}
