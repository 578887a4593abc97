import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { expect } from "vitest";
import worker from "../src/index";

export type CallOptions = {
  body?: unknown;
  /** Sent as-is, for malformed or oversized bodies. */
  rawBody?: BodyInit;
  token?: string;
  headers?: Record<string, string>;
  env?: Env;
};

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers field by field.
export type CallResult = { status: number; headers: Headers; body: any };

/** Calls the real Worker entry (middleware, onError and all) and parses the JSON answer. */
export async function call(method: string, path: string, options: CallOptions = {}): Promise<CallResult> {
  const headers = new Headers(options.headers);
  let body = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  }
  if (options.token) headers.set("Authorization", `Bearer ${options.token}`);
  const ctx = createExecutionContext();
  const response = await worker.fetch(
    new Request(`http://localhost${path}`, { method, headers, body }),
    options.env ?? env,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: response.status, headers: response.headers, body: parsed };
}

let phoneCounter = 0;

/** A phone number no other test uses (E.164 without the plus, so normalisation is exercised too). */
export function uniquePhone(): string {
  phoneCounter += 1;
  const random = Math.floor(Math.random() * 1e6)
    .toString()
    .padStart(6, "0");
  return `91${random}${String(phoneCounter).padStart(4, "0")}`;
}

export const PASSWORD = "s3cretPass";

export async function signUp(overrides: Record<string, unknown> = {}) {
  const phoneNumber = uniquePhone();
  const res = await call("POST", "/api/auth/signup", { body: { phoneNumber, password: PASSWORD, ...overrides } });
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { phoneNumber: `+${phoneNumber}`, user: res.body.user };
}

export async function requestOtp(phoneNumber: string, path = "/api/auth/send-otp") {
  const res = await call("POST", path, { body: { phoneNumber } });
  if (res.status !== 200) throw new Error(`OTP request failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.otp as string;
}

/** A signed-up, phone-verified user with a token. */
export async function verifiedUser() {
  const { phoneNumber } = await signUp();
  const otp = await requestOtp(phoneNumber);
  const res = await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp } });
  if (res.status !== 200) throw new Error(`verify failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { phoneNumber, token: res.body.authToken as string, user: res.body.user };
}

/** Moves every OTP of this phone back in time, as if `ms` had passed. */
export async function ageOtps(phoneNumber: string, ms: number) {
  await env.DB.prepare(
    "UPDATE otps SET created_at = created_at - ?1, expires_at = expires_at - ?1 WHERE user_id = (SELECT id FROM users WHERE phone_number = ?2)",
  )
    .bind(ms, phoneNumber)
    .run();
}

/** Asserts the contract's error envelope: status, code, a message, and nothing internal. */
export function expectError(res: CallResult, status: number, code: string) {
  expect({ status: res.status, success: res.body?.success, code: res.body?.error?.code }).toEqual({
    status,
    success: false,
    code,
  });
  expect(typeof res.body.message).toBe("string");
  expect(JSON.stringify(res.body)).not.toMatch(/stack|at .*\(|SQLITE|D1_ERROR/);
}
