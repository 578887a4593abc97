import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  ageOtps,
  type CallResult,
  call,
  countingD1,
  e164,
  expectError,
  PASSWORD,
  requestOtp,
  signUp,
  uniquePhone,
  verifiedUser,
} from "./helpers";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const WRONG = "wrongPass1";
const WINDOW_MS = 15 * 60_000;

type Options = { ip?: string; env?: Env };

const headersFor = (options: Options) => (options.ip ? { "CF-Connecting-IP": options.ip } : undefined);

const login = (phoneNumber: string, password: string, options: Options = {}) =>
  call("POST", "/api/auth/login", { body: { phoneNumber, password }, headers: headersFor(options), env: options.env });

const changePassword = (token: string, currentPassword: string, options: Options = {}) =>
  call("POST", "/api/auth/change-password", {
    token,
    body: { currentPassword, newPassword: "n3wPassword" },
    headers: headersFor(options),
    env: options.env,
  });

/** A documentation-range IPv6 address (/64) no other test uses. */
function uniqueIp() {
  const part = () => Math.floor(Math.random() * 0xffff).toString(16);
  return `2001:db8:${part()}:${part()}::1`;
}

function expectThrottled(res: CallResult, retryAfter?: number) {
  expectError(res, 429, "TOO_MANY_ATTEMPTS");
  const header = Number(res.headers.get("Retry-After"));
  if (retryAfter === undefined) {
    expect(header).toBeGreaterThanOrEqual(1);
    expect(header).toBeLessThanOrEqual(WINDOW_MS / 1000);
  } else {
    expect(header).toBe(retryAfter);
  }
}

describe("guessing throttle per phone number", () => {
  it("answers the right password 429 TOO_MANY_ATTEMPTS after 10 wrong ones, until the 15 minutes have passed", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const start = Date.now();
    const { phoneNumber } = await verifiedUser();
    for (let i = 0; i < 10; i++) expectError(await login(phoneNumber, WRONG), 401, "INVALID_CREDENTIALS");
    expectThrottled(await login(phoneNumber, PASSWORD), 900);
    expectThrottled(await login(phoneNumber, WRONG), 900);
    vi.setSystemTime(start + WINDOW_MS - 1_000);
    expectThrottled(await login(phoneNumber, PASSWORD), 1);
    vi.setSystemTime(start + WINDOW_MS);
    expect((await login(phoneNumber, PASSWORD)).status).toBe(200);
  });

  it("counts a sliding 15 minutes: 9 failures, then one 10 minutes later, lock the phone", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const start = Date.now();
    const { phoneNumber } = await verifiedUser();
    for (let i = 0; i < 9; i++) await login(phoneNumber, WRONG);
    vi.setSystemTime(start + 10 * 60_000);
    expectError(await login(phoneNumber, WRONG), 401, "INVALID_CREDENTIALS");
    // The first nine leave the window 15 minutes after they were made.
    expectThrottled(await login(phoneNumber, PASSWORD), 300);
    vi.setSystemTime(start + WINDOW_MS);
    expect((await login(phoneNumber, PASSWORD)).status).toBe(200);
  });

  it("throttles an unknown phone number the same way, so the answer reveals nothing", async () => {
    const phoneNumber = e164(uniquePhone());
    for (let i = 0; i < 10; i++) expectError(await login(phoneNumber, WRONG), 401, "INVALID_CREDENTIALS");
    expectThrottled(await login(phoneNumber, PASSWORD));
  });

  it("lets successes through below the limit without resetting or adding to the count", async () => {
    const { phoneNumber } = await verifiedUser();
    for (let i = 0; i < 9; i++) await login(phoneNumber, WRONG);
    for (let i = 0; i < 3; i++) expect((await login(phoneNumber, PASSWORD)).status).toBe(200);
    expectError(await login(phoneNumber, WRONG), 401, "INVALID_CREDENTIALS");
    expectThrottled(await login(phoneNumber, PASSWORD));
  });

  it("checks no more than 10 of 30 concurrent wrong passwords", async () => {
    const { phoneNumber } = await verifiedUser();
    const results = await Promise.all(Array.from({ length: 30 }, () => login(phoneNumber, WRONG)));
    expect(results.filter((r) => r.status === 401)).toHaveLength(10);
    const refused = results.filter((r) => r.status === 429);
    expect(refused).toHaveLength(20);
    for (const res of refused) expectThrottled(res);
    expectThrottled(await login(phoneNumber, PASSWORD));
  });

  it("counts verify-otp and reset-password failures with login's: the right code then gets 429 too", async () => {
    const { phoneNumber } = await verifiedUser();
    await ageOtps(phoneNumber, 31_000);
    const loginOtp = await requestOtp(phoneNumber);
    const resetOtp = await requestOtp(phoneNumber, "/api/auth/forgot-password");
    const wrong = (otp: string) => (otp === "000000" ? "111111" : "000000");
    for (let i = 0; i < 4; i++) {
      expectError(
        await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp: wrong(loginOtp) } }),
        400,
        "OTP_INVALID",
      );
    }
    for (let i = 0; i < 3; i++) {
      const res = await call("POST", "/api/auth/reset-password", {
        body: { phoneNumber, otp: wrong(resetOtp), newPassword: "n3wPassword" },
      });
      expectError(res, 400, "OTP_INVALID");
    }
    for (let i = 0; i < 3; i++) expectError(await login(phoneNumber, WRONG), 401, "INVALID_CREDENTIALS");
    expectThrottled(await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp: loginOtp } }));
    expectThrottled(
      await call("POST", "/api/auth/reset-password", {
        body: { phoneNumber, otp: resetOtp, newPassword: "n3wPassword" },
      }),
    );
    expectThrottled(await login(phoneNumber, PASSWORD));
  });

  it("does not count requests refused before any check (validation)", async () => {
    const { phoneNumber } = await verifiedUser();
    for (let i = 0; i < 12; i++) {
      expectError(await login(phoneNumber, ""), 400, "VALIDATION_FAILED");
    }
    expect((await login(phoneNumber, PASSWORD)).status).toBe(200);
  });
});

describe("guessing throttle for change-password", () => {
  it("answers the right current password 429 after 10 wrong ones, per user; login is not affected", async () => {
    const { phoneNumber, token } = await verifiedUser();
    for (let i = 0; i < 10; i++) expectError(await changePassword(token, WRONG), 400, "WRONG_PASSWORD");
    expectThrottled(await changePassword(token, PASSWORD), 900);
    expect((await call("GET", "/api/user/me", { token })).status).toBe(200);
    expect((await login(phoneNumber, PASSWORD)).status).toBe(200);
  });

  it("checks no more than 10 of 20 concurrent wrong current passwords", async () => {
    const { token } = await verifiedUser();
    const results = await Promise.all(Array.from({ length: 20 }, () => changePassword(token, WRONG)));
    expect(results.filter((r) => r.status === 400)).toHaveLength(10);
    expect(results.filter((r) => r.status === 429)).toHaveLength(10);
  });
});

describe("guessing throttle per client IP", () => {
  const ipEnv = (limit: string): Env => ({ ...env, AUTH_FAILURES_PER_IP: limit });

  it("has AUTH_FAILURES_PER_IP set to 100 in wrangler.toml", () => {
    expect(env.AUTH_FAILURES_PER_IP).toBe("100");
  });

  it("refuses an IP past AUTH_FAILURES_PER_IP failures over any phones, even with the right password", async () => {
    const limited = ipEnv("3");
    const ip = uniqueIp();
    for (let i = 0; i < 3; i++) {
      expectError(await login(e164(uniquePhone()), WRONG, { ip, env: limited }), 401, "INVALID_CREDENTIALS");
    }
    const { phoneNumber, token } = await verifiedUser();
    expectThrottled(await login(phoneNumber, PASSWORD, { ip, env: limited }), 900);
    expectThrottled(
      await call("POST", "/api/auth/verify-otp", {
        body: { phoneNumber, otp: "123456" },
        headers: { "CF-Connecting-IP": ip },
        env: limited,
      }),
    );
    expectThrottled(await changePassword(token, PASSWORD, { ip, env: limited }));
    expect((await login(phoneNumber, PASSWORD, { ip: uniqueIp(), env: limited })).status).toBe(200);
  });

  it("counts an IPv6 client by its /64", async () => {
    const limited = ipEnv("2");
    const prefix = uniqueIp().replace(/::1$/, "");
    await login(e164(uniquePhone()), WRONG, { ip: `${prefix}::1`, env: limited });
    await login(e164(uniquePhone()), WRONG, { ip: `${prefix}:0:0:0:2`, env: limited });
    const { phoneNumber } = await verifiedUser();
    expectThrottled(await login(phoneNumber, PASSWORD, { ip: `${prefix}:abcd:1:2:3`, env: limited }));
  });

  it("counts IPv4 clients by address", async () => {
    const limited = ipEnv("1");
    const a = `203.0.113.${Math.floor(Math.random() * 250)}`;
    await login(e164(uniquePhone()), WRONG, { ip: a, env: limited });
    const { phoneNumber } = await verifiedUser();
    expectThrottled(await login(phoneNumber, PASSWORD, { ip: a, env: limited }));
  });
});

describe("throttle costs", () => {
  it("adds no D1 round trip before the answer: login makes one, and one more after it to drop its attempt", async () => {
    const { phoneNumber } = await verifiedUser();
    const { binding, counter } = countingD1(env.DB);
    expect((await login(phoneNumber, PASSWORD, { env: { ...env, DB: binding } })).status).toBe(200);
    expect(counter.roundTrips).toBe(2);
  });

  // After the answer, a change or reset makes one more (in waitUntil): the ids of the user's chatrooms,
  // whose hubs end the streams of the revoked tokens.
  it("keeps verify-otp and reset-password at 4 round trips and change-password at 2, plus 1 after the answer", async () => {
    const { phoneNumber } = await signUp();
    const otp = await requestOtp(phoneNumber);
    const verifyCount = countingD1(env.DB);
    const verified = await call("POST", "/api/auth/verify-otp", {
      body: { phoneNumber, otp },
      env: { ...env, DB: verifyCount.binding },
    });
    expect(verified.status).toBe(200);
    expect(verifyCount.counter.roundTrips).toBe(4);
    const changeCount = countingD1(env.DB);
    const changed = await changePassword(verified.body.authToken, PASSWORD, {
      env: { ...env, DB: changeCount.binding },
    });
    expect(changed.status).toBe(200);
    expect(changeCount.counter.roundTrips).toBe(2 + 1);
    const resetOtp = await requestOtp(phoneNumber, "/api/auth/forgot-password");
    const resetCount = countingD1(env.DB);
    const reset = await call("POST", "/api/auth/reset-password", {
      body: { phoneNumber, otp: resetOtp, newPassword: "n3wPassword2" },
      env: { ...env, DB: resetCount.binding },
    });
    expect(reset.status).toBe(200);
    expect(resetCount.counter.roundTrips).toBe(4 + 1);
  });
});

describe("throttle documentation", () => {
  it("documents 429 TOO_MANY_ATTEMPTS with Retry-After on the four operations", async () => {
    const doc = (await call("GET", "/openapi.json")).body;
    for (const path of ["login", "verify-otp", "reset-password", "change-password"]) {
      const operation = doc.paths[`/api/auth/${path}`].post;
      expect(operation.responses["429"].description).toContain("TOO_MANY_ATTEMPTS");
      expect(operation.responses["429"].headers).toHaveProperty("Retry-After");
      expect(operation.description).toMatch(/10 failed attempts/);
    }
  });
});
