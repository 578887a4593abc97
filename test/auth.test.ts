import { env } from "cloudflare:test";
import { SignJWT } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { PBKDF2_ITERATIONS } from "../src/features/auth/password";
import {
  ageOtps,
  call,
  countingD1,
  e164,
  expectError,
  expectUnauthorized,
  PASSWORD,
  requestOtp,
  signUp,
  uniquePhone,
  verifiedUser,
} from "./helpers";
import { expectLogged } from "./logs";
import { stubHost } from "./stubs";

afterEach(() => {
  vi.restoreAllMocks();
});

const secretKey = () => new TextEncoder().encode(env.JWT_SECRET);

async function signToken(
  claims: Record<string, unknown>,
  options: { alg?: string; key?: Uint8Array; exp?: number | null } = {},
) {
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: options.alg ?? "HS256" })
    .setIssuer("gemini-backend")
    .setIssuedAt()
    .setJti(crypto.randomUUID());
  if (options.exp !== null) jwt = jwt.setExpirationTime(options.exp ?? "1h");
  return jwt.sign(options.key ?? secretKey());
}

describe("POST /api/auth/signup", () => {
  it("returns 201 with the user, normalised phone, no password fields and verifiedAt null", async () => {
    const phone = uniquePhone();
    const res = await call("POST", "/api/auth/signup", {
      body: { phoneNumber: phone, password: PASSWORD, email: "Asha.Rao@Example.com", fullName: "  Asha Rao " },
    });
    expect(res.status).toBe(201);
    expect(res.body.success).toBe(true);
    expect(res.body.user).toEqual({
      id: expect.any(String),
      phoneNumber: e164(phone),
      email: "asha.rao@example.com",
      fullName: "Asha Rao",
      verifiedAt: null,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
      updatedAt: expect.any(String),
    });
    expect(JSON.stringify(res.body)).not.toMatch(/password/i);
  });

  it("stores the password as a self-describing PBKDF2-SHA256 hash with 100 000 iterations", async () => {
    const { user } = await signUp();
    const row = await env.DB.prepare("SELECT password_hash FROM users WHERE id = ?")
      .bind(user.id)
      .first<{ password_hash: string }>();
    const [algorithm, iterations, salt, hash] = row?.password_hash.split("$") ?? [];
    expect(algorithm).toBe("pbkdf2-sha256");
    expect(Number(iterations)).toBe(100_000);
    expect(salt).toHaveLength(22); // 16 bytes, base64url
    expect(hash).toHaveLength(43); // 32 bytes, base64url
    expect(row?.password_hash).not.toContain(PASSWORD);
  });

  it("never configures PBKDF2 above the Workers cap of 100 000 iterations", () => {
    expect(PBKDF2_ITERATIONS).toBeLessThanOrEqual(100_000);
  });

  it("returns 409 PHONE_TAKEN for a phone already registered, in E.164 or without + and country code", async () => {
    const { phoneNumber } = await signUp();
    expectError(
      await call("POST", "/api/auth/signup", { body: { phoneNumber, password: PASSWORD } }),
      409,
      "PHONE_TAKEN",
    );
    const bare = phoneNumber.slice("+91".length);
    expectError(
      await call("POST", "/api/auth/signup", { body: { phoneNumber: bare, password: PASSWORD } }),
      409,
      "PHONE_TAKEN",
    );
  });

  it("returns 409 EMAIL_TAKEN for an email in another case", async () => {
    const email = `user${uniquePhone()}@example.com`;
    await signUp({ email });
    const res = await call("POST", "/api/auth/signup", {
      body: { phoneNumber: uniquePhone(), password: PASSWORD, email: email.toUpperCase() },
    });
    expectError(res, 409, "EMAIL_TAKEN");
  });

  it("gives exactly one 201 and one 409 for concurrent signups with the same phone", async () => {
    const phoneNumber = uniquePhone();
    const results = await Promise.all(
      [0, 1].map(() => call("POST", "/api/auth/signup", { body: { phoneNumber, password: PASSWORD } })),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    const conflict = results.find((r) => r.status === 409);
    if (conflict) expectError(conflict, 409, "PHONE_TAKEN");
  });

  it.each([
    ["a phone that is too short", { phoneNumber: "1234567", password: PASSWORD }, "phoneNumber"],
    ["a phone starting with 0", { phoneNumber: "0919876543210", password: PASSWORD }, "phoneNumber"],
    ["a password without a digit", { phoneNumber: "919876543210", password: "onlyletters" }, "password"],
    ["a password without a letter", { phoneNumber: "919876543210", password: "1234567890" }, "password"],
    ["a password of 7 characters", { phoneNumber: "919876543210", password: "abc1234" }, "password"],
    ["a password of 73 characters", { phoneNumber: "919876543210", password: `a1${"x".repeat(71)}` }, "password"],
    ["a one-letter full name", { phoneNumber: "919876543210", password: PASSWORD, fullName: "A" }, "fullName"],
    ["an invalid email", { phoneNumber: "919876543210", password: PASSWORD, email: "not-an-email" }, "email"],
    ["a numeric phone", { phoneNumber: 919876543210, password: PASSWORD }, "phoneNumber"],
  ])("returns 400 VALIDATION_FAILED for %s", async (_label, body, path) => {
    const res = await call("POST", "/api/auth/signup", { body });
    expectError(res, 400, "VALIDATION_FAILED");
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
  });
});

describe("phone numbers", () => {
  const e164Only: Env = { ...env, DEFAULT_CALLING_CODE: "" };

  it("stores an E.164 number as sent, whatever DEFAULT_CALLING_CODE says", async () => {
    const phoneNumber = `+1${uniquePhone().slice(1)}`;
    const res = await call("POST", "/api/auth/signup", { env: e164Only, body: { phoneNumber, password: PASSWORD } });
    expect(res.status).toBe(201);
    expect(res.body.user.phoneNumber).toBe(phoneNumber);
  });

  it("refuses a number without + when DEFAULT_CALLING_CODE is not set, showing the expected form", async () => {
    const phoneNumber = uniquePhone();
    const res = await call("POST", "/api/auth/signup", { env: e164Only, body: { phoneNumber, password: PASSWORD } });
    expectError(res, 400, "VALIDATION_FAILED");
    expect(res.body.message).toContain("+919876543210");
    expect(res.body.error.details).toEqual([{ path: "phoneNumber", message: res.body.message }]);
    // Nothing was stored under the misread +98… either.
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM users WHERE phone_number IN (?1, ?2)")
      .bind(`+${phoneNumber}`, e164(phoneNumber))
      .first<{ n: number }>();
    expect(stored?.n).toBe(0);
  });

  it.each([
    ["send-otp", "/api/auth/send-otp", {}],
    ["verify-otp", "/api/auth/verify-otp", { otp: "123456" }],
    ["login", "/api/auth/login", { password: PASSWORD }],
    ["forgot-password", "/api/auth/forgot-password", {}],
    ["reset-password", "/api/auth/reset-password", { otp: "123456", newPassword: "n3wPassword" }],
  ])("%s refuses a number without + when DEFAULT_CALLING_CODE is not set", async (_name, path, fields) => {
    const res = await call("POST", path, { env: e164Only, body: { phoneNumber: "9876543210", ...fields } });
    expectError(res, 400, "VALIDATION_FAILED");
    expect(res.body.error.details[0].path).toBe("phoneNumber");
  });

  it("reads 9876543210 as +91 9876543210 with DEFAULT_CALLING_CODE=91, in every auth flow", async () => {
    const national = uniquePhone();
    const signup = await call("POST", "/api/auth/signup", { body: { phoneNumber: national, password: PASSWORD } });
    expect(signup.body.user.phoneNumber).toBe(e164(national));
    const otp = await requestOtp(national);
    const verified = await call("POST", "/api/auth/verify-otp", { body: { phoneNumber: national, otp } });
    expect(verified.status).toBe(200);
    const login = await call("POST", "/api/auth/login", { body: { phoneNumber: national, password: PASSWORD } });
    expect(login.status).toBe(200);
    const sameUser = await call("POST", "/api/auth/login", {
      body: { phoneNumber: e164(national), password: PASSWORD },
    });
    expect(sameUser.body.user.id).toBe(login.body.user.id);
  });

  it("refuses a national number that would make more than 15 digits with the calling code", async () => {
    const res = await call("POST", "/api/auth/signup", {
      env: { ...env, DEFAULT_CALLING_CODE: "971" },
      body: { phoneNumber: "9876543210987", password: PASSWORD },
    });
    expectError(res, 400, "VALIDATION_FAILED");
    expect(res.body.error.details[0].path).toBe("phoneNumber");
  });
});

describe("POST /api/auth/send-otp", () => {
  it("returns a 6-digit OTP valid for 300 s and stores only a keyed hash of it", async () => {
    const { phoneNumber, user } = await signUp();
    const res = await call("POST", "/api/auth/send-otp", { body: { phoneNumber } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ success: true, expiresInSeconds: 300, otp: expect.stringMatching(/^\d{6}$/) });
    const row = await env.DB.prepare("SELECT code_hash, expires_at - created_at AS ttl FROM otps WHERE user_id = ?")
      .bind(user.id)
      .first<{ code_hash: string; ttl: number }>();
    expect(row?.code_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(row?.code_hash).not.toContain(res.body.otp);
    expect(row?.ttl).toBe(300_000);
  });

  it("returns 404 USER_NOT_FOUND for an unknown phone", async () => {
    expectError(
      await call("POST", "/api/auth/send-otp", { body: { phoneNumber: uniquePhone() } }),
      404,
      "USER_NOT_FOUND",
    );
  });

  it("returns 429 OTP_RATE_LIMITED with Retry-After for a second OTP within 30 s", async () => {
    const { phoneNumber } = await signUp();
    await requestOtp(phoneNumber);
    const res = await call("POST", "/api/auth/send-otp", { body: { phoneNumber } });
    expectError(res, 429, "OTP_RATE_LIMITED");
    const retryAfter = Number(res.headers.get("Retry-After"));
    expect(retryAfter).toBeGreaterThanOrEqual(29);
    expect(retryAfter).toBeLessThanOrEqual(30);
  });

  it("allows 5 OTPs an hour and refuses the 6th until the oldest leaves the hour", async () => {
    const { phoneNumber } = await signUp();
    for (let i = 0; i < 5; i++) {
      await requestOtp(phoneNumber);
      await ageOtps(phoneNumber, 31_000);
    }
    const res = await call("POST", "/api/auth/send-otp", { body: { phoneNumber } });
    expectError(res, 429, "OTP_RATE_LIMITED");
    // The oldest was issued 5 × 31 s ago, so it leaves the window in 3600 − 155 s.
    expect(Number(res.headers.get("Retry-After"))).toBe(3600 - 155);
    await ageOtps(phoneNumber, 3600_000 - 5 * 31_000 + 1_000);
    expect((await call("POST", "/api/auth/send-otp", { body: { phoneNumber } })).status).toBe(200);
  });

  it("limits login and reset OTPs separately", async () => {
    const { phoneNumber } = await signUp();
    await requestOtp(phoneNumber);
    expect((await call("POST", "/api/auth/forgot-password", { body: { phoneNumber } })).status).toBe(200);
  });

  it("keeps the limit under concurrent requests: one OTP out of five at once", async () => {
    const { phoneNumber } = await signUp();
    const results = await Promise.all(
      Array.from({ length: 5 }, () => call("POST", "/api/auth/send-otp", { body: { phoneNumber } })),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 429)).toHaveLength(4);
  });

  describe("with OTP_DELIVERY=webhook", () => {
    const webhookEnv = () => ({
      ...env,
      OTP_DELIVERY: "webhook",
      OTP_WEBHOOK_URL: "https://sms-relay.example.test/otp",
    });

    function stubRelay(status: number) {
      const received: unknown[] = [];
      stubHost("sms-relay.example.test", async (request) => {
        received.push(await request.json());
        return new Response(JSON.stringify({ queued: status < 300 }), { status });
      });
      return received;
    }

    it("posts {phoneNumber, otp, purpose} to the relay and leaves the code out of the body", async () => {
      const received = stubRelay(202);
      const { phoneNumber } = await signUp();
      const res = await call("POST", "/api/auth/send-otp", { body: { phoneNumber }, env: webhookEnv() });
      expect(res.status).toBe(200);
      expect(res.body.otp).toBeUndefined();
      expect(res.body.expiresInSeconds).toBe(300);
      expect(received).toEqual([{ phoneNumber, otp: expect.stringMatching(/^\d{6}$/), purpose: "login" }]);
      const otp = (received[0] as { otp: string }).otp;
      const verified = await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp } });
      expect(verified.status).toBe(200);
    });

    it("answers 503 OTP_DELIVERY_NOT_CONFIGURED without a relay URL: no code in the body, no OTP made", async () => {
      const { phoneNumber } = await signUp();
      // The deploy default: webhook delivery, and nobody set OTP_WEBHOOK_URL.
      const unset = { ...env, OTP_DELIVERY: "webhook", OTP_WEBHOOK_URL: "" };
      for (const path of ["/api/auth/send-otp", "/api/auth/forgot-password"]) {
        const res = await call("POST", path, { body: { phoneNumber }, env: unset });
        expectError(res, 503, "OTP_DELIVERY_NOT_CONFIGURED");
        expect(JSON.stringify(res.body)).not.toMatch(/\d{6}/);
      }
      const unknownMode = await call("POST", "/api/auth/send-otp", {
        body: { phoneNumber },
        env: { ...env, OTP_DELIVERY: "sms", OTP_WEBHOOK_URL: "" },
      });
      expectError(unknownMode, 503, "OTP_DELIVERY_NOT_CONFIGURED");
      // Nothing was issued, so the mocked delivery can still issue one at once (no 30 s cooldown).
      expect((await call("POST", "/api/auth/send-otp", { body: { phoneNumber } })).status).toBe(200);
      expectLogged("error", "OTP_WEBHOOK_URL is not set; OTPs cannot be delivered");
    });

    it("returns 502 OTP_DELIVERY_FAILED when the relay fails, without spending the rate limit", async () => {
      stubRelay(500);
      const { phoneNumber } = await signUp();
      const res = await call("POST", "/api/auth/forgot-password", { body: { phoneNumber }, env: webhookEnv() });
      expectError(res, 502, "OTP_DELIVERY_FAILED");
      vi.restoreAllMocks();
      stubRelay(200);
      const retry = await call("POST", "/api/auth/forgot-password", { body: { phoneNumber }, env: webhookEnv() });
      expect(retry.status).toBe(200);
      expectLogged("error", "OTP webhook failed", { status: 500 });
    });
  });
});

describe("POST /api/auth/verify-otp", () => {
  it("returns a bearer token and the user with verifiedAt set", async () => {
    const { phoneNumber } = await signUp();
    const otp = await requestOtp(phoneNumber);
    const res = await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ success: true, tokenType: "Bearer", expiresIn: 86_400 });
    expect(res.body.authToken.split(".")).toHaveLength(3);
    expect(Date.parse(res.body.user.verifiedAt)).not.toBeNaN();
    expect((await call("GET", "/api/user/me", { token: res.body.authToken })).status).toBe(200);
  });

  it("refuses a replayed OTP with 400 OTP_INVALID", async () => {
    const { phoneNumber } = await signUp();
    const otp = await requestOtp(phoneNumber);
    expect((await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp } })).status).toBe(200);
    expectError(await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp } }), 400, "OTP_INVALID");
  });

  it("lets only one of several concurrent requests with the right code succeed", async () => {
    const { phoneNumber } = await signUp();
    const otp = await requestOtp(phoneNumber);
    const results = await Promise.all(
      Array.from({ length: 4 }, () => call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp } })),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
  });

  it("burns the OTP on the 5th wrong try: 4 × OTP_INVALID, then OTP_ATTEMPTS_EXCEEDED even for the right code", async () => {
    const { phoneNumber } = await signUp();
    const otp = await requestOtp(phoneNumber);
    const wrong = otp === "000000" ? "111111" : "000000";
    for (let i = 0; i < 4; i++) {
      expectError(
        await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp: wrong } }),
        400,
        "OTP_INVALID",
      );
    }
    expectError(
      await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp: wrong } }),
      429,
      "OTP_ATTEMPTS_EXCEEDED",
    );
    expectError(
      await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp } }),
      429,
      "OTP_ATTEMPTS_EXCEEDED",
    );
  });

  it("counts concurrent guesses too: after 9 wrong guesses at once the right code no longer works", async () => {
    const { phoneNumber } = await signUp();
    const otp = await requestOtp(phoneNumber);
    // Nine, not more: a tenth failure for the phone would trip the guessing throttle (TOO_MANY_ATTEMPTS) first.
    const guesses = Array.from({ length: 9 }, (_, i) => String((Number(otp) + 1 + i) % 1_000_000).padStart(6, "0"));
    await Promise.all(
      guesses.map((guess) => call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp: guess } })),
    );
    expectError(
      await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp } }),
      429,
      "OTP_ATTEMPTS_EXCEEDED",
    );
  });

  it("returns 400 OTP_EXPIRED after 5 minutes", async () => {
    const { phoneNumber } = await signUp();
    const otp = await requestOtp(phoneNumber);
    await ageOtps(phoneNumber, 300_001);
    expectError(await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp } }), 400, "OTP_EXPIRED");
  });

  it("accepts only the newest OTP once a new one was issued", async () => {
    const { phoneNumber } = await signUp();
    const first = await requestOtp(phoneNumber);
    await ageOtps(phoneNumber, 31_000);
    const second = await requestOtp(phoneNumber);
    if (first !== second) {
      expectError(
        await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp: first } }),
        400,
        "OTP_INVALID",
      );
    }
    expect((await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp: second } })).status).toBe(200);
  });

  it("does not accept a password-reset OTP as a login OTP", async () => {
    const { phoneNumber } = await signUp();
    const resetOtp = await requestOtp(phoneNumber, "/api/auth/forgot-password");
    expectError(
      await call("POST", "/api/auth/verify-otp", { body: { phoneNumber, otp: resetOtp } }),
      400,
      "OTP_INVALID",
    );
  });

  it("returns 400 OTP_INVALID for an unknown phone and VALIDATION_FAILED for a malformed code", async () => {
    expectError(
      await call("POST", "/api/auth/verify-otp", { body: { phoneNumber: uniquePhone(), otp: "123456" } }),
      400,
      "OTP_INVALID",
    );
    expectError(
      await call("POST", "/api/auth/verify-otp", { body: { phoneNumber: uniquePhone(), otp: "12a456" } }),
      400,
      "VALIDATION_FAILED",
    );
  });
});

describe("POST /api/auth/login", () => {
  it("returns a token for a verified user, with the phone in E.164 or without + and country code", async () => {
    const { phoneNumber } = await verifiedUser();
    for (const phone of [phoneNumber, phoneNumber.slice("+91".length)]) {
      const res = await call("POST", "/api/auth/login", { body: { phoneNumber: phone, password: PASSWORD } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ tokenType: "Bearer", expiresIn: 86_400, user: { phoneNumber } });
      expect((await call("GET", "/api/user/me", { token: res.body.authToken })).status).toBe(200);
    }
  });

  it("answers an unknown phone and a wrong password with identical 401 INVALID_CREDENTIALS bodies", async () => {
    const { phoneNumber } = await verifiedUser();
    const wrongPassword = await call("POST", "/api/auth/login", { body: { phoneNumber, password: "wrongPass1" } });
    const unknownPhone = await call("POST", "/api/auth/login", {
      body: { phoneNumber: uniquePhone(), password: PASSWORD },
    });
    expectError(wrongPassword, 401, "INVALID_CREDENTIALS");
    expect(unknownPhone.status).toBe(wrongPassword.status);
    expect(unknownPhone.body).toEqual(wrongPassword.body);
    // Every 401 names a challenge (RFC 9110): a bearer token, which login is how to get.
    for (const res of [wrongPassword, unknownPhone])
      expect(res.headers.get("WWW-Authenticate")).toBe('Bearer realm="api"');
  });

  it("returns 403 PHONE_NOT_VERIFIED only for the right password of an unverified phone", async () => {
    const { phoneNumber } = await signUp();
    expectError(
      await call("POST", "/api/auth/login", { body: { phoneNumber, password: PASSWORD } }),
      403,
      "PHONE_NOT_VERIFIED",
    );
    expectError(
      await call("POST", "/api/auth/login", { body: { phoneNumber, password: "wrongPass1" } }),
      401,
      "INVALID_CREDENTIALS",
    );
  });
});

describe("password reset", () => {
  it("sets the new password, revokes earlier tokens and verifies the phone", async () => {
    const { phoneNumber, token } = await verifiedUser();
    const otp = await requestOtp(phoneNumber, "/api/auth/forgot-password");
    const res = await call("POST", "/api/auth/reset-password", {
      body: { phoneNumber, otp, newPassword: "n3wPassword" },
    });
    expect(res.status).toBe(200);
    expect(res.body.success).toBe(true);
    expectError(await call("GET", "/api/user/me", { token }), 401, "UNAUTHORIZED");
    expectError(
      await call("POST", "/api/auth/login", { body: { phoneNumber, password: PASSWORD } }),
      401,
      "INVALID_CREDENTIALS",
    );
    expect((await call("POST", "/api/auth/login", { body: { phoneNumber, password: "n3wPassword" } })).status).toBe(
      200,
    );
  });

  it("lets an unverified user reset and then sign in, since the reset OTP proves the phone", async () => {
    const { phoneNumber } = await signUp();
    const otp = await requestOtp(phoneNumber, "/api/auth/forgot-password");
    expect(
      (await call("POST", "/api/auth/reset-password", { body: { phoneNumber, otp, newPassword: "n3wPassword" } }))
        .status,
    ).toBe(200);
    expect((await call("POST", "/api/auth/login", { body: { phoneNumber, password: "n3wPassword" } })).status).toBe(
      200,
    );
  });

  it("refuses a login OTP, a wrong code, and a reused reset OTP", async () => {
    const { phoneNumber } = await signUp();
    const loginOtp = await requestOtp(phoneNumber);
    const reset = (otp: string) =>
      call("POST", "/api/auth/reset-password", { body: { phoneNumber, otp, newPassword: "n3wPassword" } });
    expectError(await reset(loginOtp), 400, "OTP_INVALID");
    const otp = await requestOtp(phoneNumber, "/api/auth/forgot-password");
    expectError(await reset(otp === "999999" ? "000000" : "999999"), 400, "OTP_INVALID");
    expect((await reset(otp)).status).toBe(200);
    expectError(await reset(otp), 400, "OTP_INVALID");
  });

  it("returns 404 USER_NOT_FOUND from forgot-password for an unknown phone and validates the new password", async () => {
    expectError(
      await call("POST", "/api/auth/forgot-password", { body: { phoneNumber: uniquePhone() } }),
      404,
      "USER_NOT_FOUND",
    );
    const res = await call("POST", "/api/auth/reset-password", {
      body: { phoneNumber: uniquePhone(), otp: "123456", newPassword: "weak" },
    });
    expectError(res, 400, "VALIDATION_FAILED");
  });
});

describe("POST /api/auth/change-password", () => {
  it("returns a fresh token and revokes the one issued in the same second", async () => {
    const { phoneNumber, token } = await verifiedUser();
    const res = await call("POST", "/api/auth/change-password", {
      token,
      body: { currentPassword: PASSWORD, newPassword: "n3wPassword" },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ success: true, tokenType: "Bearer", authToken: expect.any(String) });
    expectError(await call("GET", "/api/user/me", { token }), 401, "UNAUTHORIZED");
    expect((await call("GET", "/api/user/me", { token: res.body.authToken })).status).toBe(200);
    expect((await call("POST", "/api/auth/login", { body: { phoneNumber, password: "n3wPassword" } })).status).toBe(
      200,
    );
  });

  it("refuses the old token from its KV revocation key alone, before a change touches D1", async () => {
    const { token } = await verifiedUser();
    const res = await call("POST", "/api/auth/change-password", {
      token,
      body: { currentPassword: PASSWORD, newPassword: "n3wPassword" },
    });
    const { binding, counter } = countingD1(env.DB);
    const create = await call("POST", "/api/chatroom", {
      token,
      body: { name: "Never" },
      env: { ...env, DB: binding },
    });
    expectError(create, 401, "UNAUTHORIZED");
    expect(counter.roundTrips).toBe(0);
    // A plain read runs beside the check (one round trip saved), and its answer is thrown away, headers
    // and all.
    expectError(await call("GET", "/api/user/me", { token }), 401, "UNAUTHORIZED");
    const list = await call("GET", "/api/chatroom", { token });
    expectError(list, 401, "UNAUTHORIZED");
    expect(list.headers.get("X-Cache")).toBeNull();
    expect(list.headers.get("WWW-Authenticate")).toContain('error="invalid_token"');
    expect(list.headers.get("X-Request-Id")).toBeTruthy();
    expect((await call("GET", "/api/user/me", { token: res.body.authToken })).status).toBe(200);
  });

  it("returns 400 WRONG_PASSWORD and 400 PASSWORD_UNCHANGED", async () => {
    const { token } = await verifiedUser();
    expectError(
      await call("POST", "/api/auth/change-password", {
        token,
        body: { currentPassword: "wrongPass1", newPassword: "n3wPassword" },
      }),
      400,
      "WRONG_PASSWORD",
    );
    expectError(
      await call("POST", "/api/auth/change-password", {
        token,
        body: { currentPassword: PASSWORD, newPassword: PASSWORD },
      }),
      400,
      "PASSWORD_UNCHANGED",
    );
    expect((await call("GET", "/api/user/me", { token })).status).toBe(200);
  });

  it("requires a token", async () => {
    expectError(
      await call("POST", "/api/auth/change-password", {
        body: { currentPassword: PASSWORD, newPassword: "n3wPassword" },
      }),
      401,
      "UNAUTHORIZED",
    );
  });
});

describe("bearer tokens", () => {
  it.each([
    ["no Authorization header", undefined, /missing/, false],
    ["another scheme", "Basic dXNlcjpwYXNz", /must be Bearer/, false],
    ["an empty bearer", "Bearer ", /malformed/, true],
    ["two tokens", "Bearer abc def", /malformed/, true],
    ["garbage", "Bearer not-a-jwt", /malformed/, true],
    ["three garbage parts", "Bearer aaa.bbb.ccc", /malformed/, true],
    ["non-base64 parts", "Bearer %%%.$$$.###", /malformed/, true],
  ])("returns 401 UNAUTHORIZED for %s, saying why", async (_label, authorization, because, tokenSent) => {
    const headers: Record<string, string> = authorization === undefined ? {} : { Authorization: authorization };
    expectUnauthorized(await call("GET", "/api/user/me", { headers }), because, { tokenSent });
  });

  it("returns 401 invalid for an alg:none token", async () => {
    const { user } = await verifiedUser();
    const encode = (value: object) =>
      btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    const now = Math.floor(Date.now() / 1000);
    const token = `${encode({ alg: "none", typ: "JWT" })}.${encode({ sub: user.id, ver: 0, iss: "gemini-backend", iat: now, exp: now + 3600 })}.`;
    expectUnauthorized(await call("GET", "/api/user/me", { token }), /invalid/);
  });

  it("returns 401 invalid for a token signed with another secret or another HMAC algorithm", async () => {
    const { user } = await verifiedUser();
    const forged = await signToken(
      { sub: user.id, ver: 0 },
      { key: new TextEncoder().encode("not-the-server-secret-0123456789"), exp: Math.floor(Date.now() / 1000) - 10 },
    );
    // The signature is checked first: an expired forgery is called invalid, not expired.
    expectUnauthorized(await call("GET", "/api/user/me", { token: forged }), /invalid/);
    const hs512 = await signToken({ sub: user.id, ver: 0 }, { alg: "HS512" });
    expectUnauthorized(await call("GET", "/api/user/me", { token: hs512 }), /invalid/);
    const genuine = await signToken({ sub: user.id, ver: 0 });
    expect((await call("GET", "/api/user/me", { token: genuine })).status).toBe(200);
  });

  it("checks tokens against the secret deployed now, after the key was cached for another", async () => {
    const { token } = await verifiedUser();
    expect((await call("GET", "/api/user/me", { token })).status).toBe(200);
    const rotated = { ...env, JWT_SECRET: "a-rotated-secret-0123456789abcdef" };
    expectUnauthorized(await call("GET", "/api/user/me", { token, env: rotated }), /invalid/);
    expect((await call("GET", "/api/user/me", { token })).status).toBe(200);
  });

  it("returns 401 expired for an expired token and malformed for one without exp", async () => {
    const { user } = await verifiedUser();
    const expired = await signToken({ sub: user.id, ver: 0 }, { exp: Math.floor(Date.now() / 1000) - 10 });
    expectUnauthorized(await call("GET", "/api/user/me", { token: expired }), /expired/);
    const noExp = await signToken({ sub: user.id, ver: 0 }, { exp: null });
    expectUnauthorized(await call("GET", "/api/user/me", { token: noExp }), /malformed/);
  });

  it("returns 401 revoked once the password changed, for the token used and one minted earlier", async () => {
    const { token, phoneNumber } = await verifiedUser();
    const login = await call("POST", "/api/auth/login", { body: { phoneNumber, password: PASSWORD } });
    const changed = await call("POST", "/api/auth/change-password", {
      token,
      body: { currentPassword: PASSWORD, newPassword: "n3wPassword" },
    });
    expect(changed.status).toBe(200);
    expectUnauthorized(await call("GET", "/api/user/me", { token }), /revoked by a password change/);
    expectUnauthorized(await call("GET", "/api/user/me", { token: login.body.authToken }), /revoked/);
    expect((await call("GET", "/api/user/me", { token: changed.body.authToken })).status).toBe(200);
  });

  it("returns 401 for a well-signed token of a user that does not exist, or without a token version or jti", async () => {
    const ghost = await signToken({ sub: crypto.randomUUID(), ver: 0 });
    expectUnauthorized(await call("GET", "/api/user/me", { token: ghost }), /revoked/);
    const { user } = await verifiedUser();
    const unversioned = await signToken({ sub: user.id });
    expectUnauthorized(await call("GET", "/api/user/me", { token: unversioned }), /malformed/);
    const withoutId = await new SignJWT({ sub: user.id, ver: 0 })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("gemini-backend")
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(secretKey());
    expectUnauthorized(await call("GET", "/api/user/me", { token: withoutId }), /malformed/);
  });

  it("documents the challenge header on every operation that needs auth", async () => {
    const doc = (await call("GET", "/openapi.json")).body as {
      paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, { headers?: object }> }>>;
    };
    const secured = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods)
        .filter(([, operation]) => operation.security?.length)
        .map(([method, operation]) => [`${method} ${path}`, operation.responses["401"]?.headers] as const),
    );
    expect(secured.length).toBeGreaterThan(10);
    for (const [operation, headers] of secured) expect(headers, operation).toHaveProperty("WWW-Authenticate");
  });
});
