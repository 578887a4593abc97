import { createRoute } from "@hono/zod-openapi";
import { AppError, unauthorized } from "../../lib/errors";
import {
  authErrors,
  bearerAuth,
  bodyErrors,
  errorResponses,
  jsonBody,
  jsonResponse,
  MessageOnlySchema,
} from "../../lib/openapi";
import { createRouter } from "../../lib/validate";
import { requireAuth } from "../../middleware/require-auth";
import type { AppEnv } from "../../types";
import { endRevokedStreams } from "../live";
import {
  bumpTokenVersion,
  findTakenField,
  insertUser,
  markPhoneVerified,
  replacePassword,
  selectUserById,
  selectUserByPhone,
} from "./auth.repo";
import {
  AuthResponseSchema,
  ChangePasswordBodySchema,
  LoginBodySchema,
  OtpIssuedSchema,
  PhoneBodySchema,
  ResetPasswordBodySchema,
  SignupBodySchema,
  TokenResponseSchema,
  toUserResponse,
  UserResponseSchema,
  VerifyOtpBodySchema,
} from "./auth.schemas";
import { issueOtpForPhone, redeemOtp } from "./otp";
import { burnPasswordCheck, hashPassword, verifyPassword } from "./password";
import { normalisePhone } from "./phone";
import { revokeToken, revokeTokenVersion } from "./revocation";
import { forgetAttempt, forgetAttemptWith, phoneSubject, reserveAttempt, startAttempt, userSubject } from "./throttle";
import { issueToken } from "./tokens";

const THROTTLE_RULE =
  "Guessing is throttled: after 10 failed attempts for one phone number (change-password: one user) within any 15 minutes, login, verify-otp, reset-password and change-password answer 429 TOO_MANY_ATTEMPTS with Retry-After, even for the right password or code, until fewer than 10 of those failures lie within the last 15 minutes. Failures are also counted per client IP (CF-Connecting-IP; an IPv6 client by its /64): past AUTH_FAILURES_PER_IP (default 100) within 15 minutes, that IP gets the same 429. An attempt counts from the moment its password or code is checked, so concurrent guesses are held to the limit; a success is not counted and resets nothing. Requests refused by validation are not counted.";
const TOO_MANY_ATTEMPTS =
  "TOO_MANY_ATTEMPTS: too many failed attempts for this phone number, user or client IP (Retry-After)";

/** The 429 answers, each with its Retry-After header documented. */
function throttled(description: string) {
  return {
    429: {
      ...errorResponses({ 429: description })[429],
      headers: {
        "Retry-After": { description: "Seconds until a new attempt is accepted", schema: { type: "integer" as const } },
      },
    },
  };
}

const otpErrors = {
  ...bodyErrors,
  400: "VALIDATION_FAILED, INVALID_JSON, OTP_INVALID (wrong, unknown or already used) or OTP_EXPIRED",
} as const;
const OTP_429 = `OTP_ATTEMPTS_EXCEEDED: the 5th wrong try burns the OTP; or ${TOO_MANY_ATTEMPTS}`;
const otpRequestErrors = {
  ...bodyErrors,
  404: "USER_NOT_FOUND",
  429: "OTP_RATE_LIMITED: one OTP per 30 s and 5 per hour for each phone and purpose (Retry-After)",
  502: "OTP_DELIVERY_FAILED: the SMS relay did not accept the OTP (OTP_DELIVERY=webhook)",
  503: "OTP_DELIVERY_NOT_CONFIGURED: webhook delivery (the default) without OTP_WEBHOOK_URL",
} as const;

export const authRoutes = createRouter<AppEnv>();

authRoutes.openapi(
  createRoute({
    method: "post",
    path: "/signup",
    operationId: "signUp",
    tags: ["Auth"],
    summary: "Create an account",
    description: "The phone number must then be verified with send-otp and verify-otp before password login works.",
    security: [],
    request: { body: jsonBody(SignupBodySchema) },
    responses: {
      201: jsonResponse(UserResponseSchema, "Account created"),
      ...errorResponses({ ...bodyErrors, 409: "PHONE_TAKEN or EMAIL_TAKEN" }),
    },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const phoneNumber = normalisePhone(c.env, body.phoneNumber);
    const now = new Date();
    const email = body.email ?? null;
    const user = await insertUser(c.get("db"), {
      id: crypto.randomUUID(),
      phoneNumber,
      email,
      fullName: body.fullName ?? null,
      passwordHash: await hashPassword(body.password),
      createdAt: now,
      updatedAt: now,
    });
    if (!user) {
      const taken = await findTakenField(c.get("db"), phoneNumber, email);
      throw taken === "email"
        ? new AppError(409, "EMAIL_TAKEN", "An account with this email already exists")
        : new AppError(409, "PHONE_TAKEN", "An account with this phone number already exists");
    }
    return c.json(
      {
        success: true as const,
        message: "Account created; verify your phone number with an OTP",
        user: toUserResponse(user),
      },
      201,
    );
  },
);

authRoutes.openapi(
  createRoute({
    method: "post",
    path: "/send-otp",
    operationId: "sendOtp",
    tags: ["Auth"],
    summary: "Send a login OTP",
    description:
      "With OTP_DELIVERY=webhook (the default) the code is POSTed to the SMS relay at OTP_WEBHOOK_URL; with `response` (local development and tests: mocked delivery) it is returned as `otp`.",
    security: [],
    request: { body: jsonBody(PhoneBodySchema) },
    responses: {
      200: jsonResponse(OtpIssuedSchema, "OTP issued, valid for 5 minutes"),
      ...errorResponses(otpRequestErrors),
    },
  }),
  async (c) => {
    const phoneNumber = normalisePhone(c.env, c.req.valid("json").phoneNumber);
    const issued = await issueOtpForPhone(c.env, c.get("db"), phoneNumber, "login");
    return c.json({ success: true as const, message: "OTP sent", ...issued }, 200);
  },
);

authRoutes.openapi(
  createRoute({
    method: "post",
    path: "/verify-otp",
    operationId: "verifyOtp",
    tags: ["Auth"],
    summary: "Verify the phone with a login OTP and get a token",
    description: THROTTLE_RULE,
    security: [],
    request: { body: jsonBody(VerifyOtpBodySchema) },
    responses: {
      200: jsonResponse(AuthResponseSchema, "Phone verified; signed in"),
      ...errorResponses(otpErrors),
      ...throttled(OTP_429),
    },
  }),
  async (c) => {
    const { otp } = c.req.valid("json");
    const phoneNumber = normalisePhone(c.env, c.req.valid("json").phoneNumber);
    const attempt = startAttempt(c.env, c.req.header("CF-Connecting-IP"), phoneSubject(phoneNumber));
    const db = c.get("db");
    const owner = await redeemOtp(c.env, db, attempt, phoneNumber, "login", otp);
    const [verified] = await forgetAttemptWith(db, attempt, markPhoneVerified(db, owner.id, new Date()));
    const user = verified ?? owner;
    const token = await issueToken(c.env, { userId: user.id, tokenVersion: user.tokenVersion });
    return c.json({ success: true as const, message: "OTP verified", ...token, user: toUserResponse(user) }, 200);
  },
);

authRoutes.openapi(
  createRoute({
    method: "post",
    path: "/login",
    operationId: "logIn",
    tags: ["Auth"],
    summary: "Sign in with phone number and password",
    description: THROTTLE_RULE,
    security: [],
    request: { body: jsonBody(LoginBodySchema) },
    responses: {
      200: jsonResponse(AuthResponseSchema, "Signed in"),
      ...errorResponses({
        ...bodyErrors,
        401: "INVALID_CREDENTIALS: the same answer for an unknown phone and a wrong password",
        403: "PHONE_NOT_VERIFIED: right password, phone not verified yet",
      }),
      ...throttled(TOO_MANY_ATTEMPTS),
    },
  }),
  async (c) => {
    const { password } = c.req.valid("json");
    const phoneNumber = normalisePhone(c.env, c.req.valid("json").phoneNumber);
    const attempt = startAttempt(c.env, c.req.header("CF-Connecting-IP"), phoneSubject(phoneNumber));
    const [[user]] = await reserveAttempt(c.get("db"), attempt, [selectUserByPhone(c.get("db"), phoneNumber)]);
    const valid = user ? await verifyPassword(password, user.passwordHash) : await burnPasswordCheck(password);
    if (!user || !valid) {
      // A 401 always names how to authenticate (RFC 9110 §15.5.2): here, with a bearer token from this API.
      throw new AppError(401, "INVALID_CREDENTIALS", "Phone number or password is incorrect", undefined, {
        "WWW-Authenticate": 'Bearer realm="api"',
      });
    }
    forgetAttempt(c.get("db"), c.executionCtx, attempt);
    if (!user.verifiedAt) {
      throw new AppError(403, "PHONE_NOT_VERIFIED", "Verify your phone number with an OTP before signing in");
    }
    const token = await issueToken(c.env, { userId: user.id, tokenVersion: user.tokenVersion });
    return c.json({ success: true as const, message: "Signed in", ...token, user: toUserResponse(user) }, 200);
  },
);

authRoutes.openapi(
  createRoute({
    method: "post",
    path: "/forgot-password",
    operationId: "forgotPassword",
    tags: ["Auth"],
    summary: "Send a password-reset OTP",
    description: "A reset OTP is separate from the login OTP: neither can be used for the other flow.",
    security: [],
    request: { body: jsonBody(PhoneBodySchema) },
    responses: {
      200: jsonResponse(OtpIssuedSchema, "Reset OTP issued, valid for 5 minutes"),
      ...errorResponses(otpRequestErrors),
    },
  }),
  async (c) => {
    const phoneNumber = normalisePhone(c.env, c.req.valid("json").phoneNumber);
    const issued = await issueOtpForPhone(c.env, c.get("db"), phoneNumber, "reset");
    return c.json({ success: true as const, message: "Password reset OTP sent", ...issued }, 200);
  },
);

authRoutes.openapi(
  createRoute({
    method: "post",
    path: "/reset-password",
    operationId: "resetPassword",
    tags: ["Auth"],
    summary: "Set a new password with a reset OTP",
    description: `Every token issued before the reset stops working, and their open live streams get \`revoked\` and end. The reset also marks the phone verified.\n\n${THROTTLE_RULE}`,
    security: [],
    request: { body: jsonBody(ResetPasswordBodySchema) },
    responses: {
      200: jsonResponse(MessageOnlySchema, "Password reset"),
      ...errorResponses(otpErrors),
      ...throttled(OTP_429),
    },
  }),
  async (c) => {
    const { otp, newPassword } = c.req.valid("json");
    const phoneNumber = normalisePhone(c.env, c.req.valid("json").phoneNumber);
    const attempt = startAttempt(c.env, c.req.header("CF-Connecting-IP"), phoneSubject(phoneNumber));
    const db = c.get("db");
    const owner = await redeemOtp(c.env, db, attempt, phoneNumber, "reset", otp);
    const passwordHash = await hashPassword(newPassword);
    const [user] = await forgetAttemptWith(
      db,
      attempt,
      replacePassword(db, owner.id, passwordHash, new Date(), { markVerified: true }),
    );
    if (user) {
      await revokeTokenVersion(c.env, c.executionCtx, user.id, user.tokenVersion - 1);
      endRevokedStreams(c.env, c.executionCtx, {
        userId: user.id,
        belowVersion: user.tokenVersion,
        reason: "password-reset",
      });
    }
    return c.json({ success: true as const, message: "Password reset; sign in with the new password" }, 200);
  },
);

authRoutes.openapi(
  createRoute({
    method: "post",
    path: "/change-password",
    operationId: "changePassword",
    tags: ["Auth"],
    summary: "Change the password and get a fresh token",
    description: `Every token issued before the change, including the one used for this call, stops working, and their open live streams get \`revoked\` and end. Of concurrent changes made with the same token exactly one succeeds; the others answer 409 PASSWORD_CHANGE_CONFLICT and change nothing.\n\n${THROTTLE_RULE}`,
    security: bearerAuth,
    middleware: [requireAuth] as const,
    request: { body: jsonBody(ChangePasswordBodySchema) },
    responses: {
      200: jsonResponse(TokenResponseSchema, "Password changed; use the new token"),
      ...errorResponses({
        ...bodyErrors,
        ...authErrors,
        400: "VALIDATION_FAILED, INVALID_JSON, WRONG_PASSWORD or PASSWORD_UNCHANGED",
        409: "PASSWORD_CHANGE_CONFLICT: another change made with the same token finished first; this one changed nothing and that token no longer works",
      }),
      ...throttled(TOO_MANY_ATTEMPTS),
    },
  }),
  async (c) => {
    const { currentPassword, newPassword } = c.req.valid("json");
    const db = c.get("db");
    const userId = c.get("userId");
    const tokenVersion = c.get("tokenVersion");
    const attempt = startAttempt(c.env, c.req.header("CF-Connecting-IP"), userSubject(userId));
    const [[current]] = await reserveAttempt(db, attempt, [selectUserById(db, userId)]);
    // KV may not have seen a revocation made elsewhere a moment ago; D1 has.
    if (!current || current.tokenVersion !== tokenVersion) {
      forgetAttempt(db, c.executionCtx, attempt);
      throw unauthorized("revoked");
    }
    if (!(await verifyPassword(currentPassword, current.passwordHash))) {
      throw new AppError(400, "WRONG_PASSWORD", "The current password is incorrect");
    }
    if (newPassword === currentPassword) {
      forgetAttempt(db, c.executionCtx, attempt);
      throw new AppError(400, "PASSWORD_UNCHANGED", "The new password must differ from the current one");
    }
    const [user] = await forgetAttemptWith(
      db,
      attempt,
      replacePassword(db, current.id, await hashPassword(newPassword), new Date(), {
        markVerified: false,
        expectedTokenVersion: tokenVersion,
      }),
    );
    if (!user) {
      throw new AppError(
        409,
        "PASSWORD_CHANGE_CONFLICT",
        "Another password change made with this token finished first; this one changed nothing. Sign in again",
      );
    }
    await revokeTokenVersion(c.env, c.executionCtx, user.id, user.tokenVersion - 1);
    endRevokedStreams(c.env, c.executionCtx, {
      userId: user.id,
      belowVersion: user.tokenVersion,
      reason: "password-changed",
    });
    const token = await issueToken(c.env, { userId: user.id, tokenVersion: user.tokenVersion });
    return c.json({ success: true as const, message: "Password changed", ...token }, 200);
  },
);

authRoutes.openapi(
  createRoute({
    method: "post",
    path: "/logout",
    operationId: "logOut",
    tags: ["Auth"],
    summary: "End this token",
    description:
      "The token used for this call stops working, and so do the stream tickets issued with it; the live streams opened with either get `revoked` and end. The user's other tokens keep working. " +
      "No body. A second logout with the same token is a 401.",
    security: bearerAuth,
    middleware: [requireAuth] as const,
    responses: {
      200: jsonResponse(MessageOnlySchema, "Logged out; this token no longer works"),
      ...errorResponses(authErrors),
    },
  }),
  async (c) => {
    const tokenId = c.get("tokenId");
    const tokenExpiresAt = c.get("tokenExpiresAt");
    // requireAuth only lets bearer tokens (which always carry both) reach this path.
    if (tokenId === undefined || tokenExpiresAt === undefined) throw unauthorized("malformed");
    await revokeToken(c.env, c.executionCtx, c.get("userId"), tokenId, tokenExpiresAt);
    endRevokedStreams(c.env, c.executionCtx, { userId: c.get("userId"), tokenId, reason: "logout" });
    return c.json({ success: true as const, message: "Logged out" }, 200);
  },
);

authRoutes.openapi(
  createRoute({
    method: "post",
    path: "/logout-all",
    operationId: "logOutEverywhere",
    tags: ["Auth"],
    summary: "End every token of the user",
    description:
      "Every token of the user issued so far stops working, on every device, with their stream tickets and open live streams (`revoked`), as after a password change; " +
      "the password stays. No body. Sign in again (login or verify-otp) for a new token.",
    security: bearerAuth,
    middleware: [requireAuth] as const,
    responses: {
      200: jsonResponse(MessageOnlySchema, "Logged out everywhere; no earlier token works"),
      ...errorResponses(authErrors),
    },
  }),
  async (c) => {
    const version = await bumpTokenVersion(c.get("db"), c.get("userId"), c.get("tokenVersion"));
    // KV may not have seen a revocation made elsewhere a moment ago; D1 has.
    if (version === undefined) throw unauthorized("revoked");
    await revokeTokenVersion(c.env, c.executionCtx, c.get("userId"), version - 1);
    endRevokedStreams(c.env, c.executionCtx, { userId: c.get("userId"), belowVersion: version, reason: "logout-all" });
    return c.json({ success: true as const, message: "Logged out on every device" }, 200);
  },
);
