import { env } from "cloudflare:test";
import { decodeJwt } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { call, countingD1, expectError, expectUnauthorized, PASSWORD, requestOtp, verifiedUser } from "./helpers";
import { expectLogged } from "./logs";

afterEach(() => {
  vi.restoreAllMocks();
});

type KvFaults = {
  /** Every get throws. */
  failGets?: boolean;
  /** This many puts throw before puts work again (Infinity: all of them). */
  failPuts?: number;
  /** Each put waits for this before it reaches KV. */
  holdPuts?: Promise<void>;
};

/** The CACHE binding with failures injected; counts the calls it saw. */
function faultyKv(kv: KVNamespace, faults: KvFaults) {
  const calls = { get: 0, put: 0 };
  let putsToFail = faults.failPuts ?? 0;
  const binding = new Proxy(kv, {
    get(target, property) {
      if (property === "get") {
        return (...args: unknown[]) => {
          calls.get += 1;
          if (faults.failGets) return Promise.reject(new Error("KV GET failed: 503 Service Unavailable"));
          return (target.get as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      if (property === "put") {
        return async (...args: unknown[]) => {
          calls.put += 1;
          await faults.holdPuts;
          if (putsToFail > 0) {
            putsToFail -= 1;
            throw new Error("KV PUT failed: 503 Service Unavailable");
          }
          return (target.put as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { binding, calls };
}

const withKv = (kv: KVNamespace): Env => ({ ...env, CACHE: kv });
const revokedKey = (userId: string, version: number) => `auth:revoked:${userId}:${version}`;
const loggedOutKey = (token: string) => `auth:logout:${decodeJwt(token).jti}`;

async function changePassword(token: string, options: { env?: Env; newPassword?: string } = {}) {
  return call("POST", "/api/auth/change-password", {
    token,
    env: options.env,
    body: { currentPassword: PASSWORD, newPassword: options.newPassword ?? "n3wPassword" },
  });
}

async function resetPassword(phoneNumber: string, options: { env?: Env } = {}) {
  const otp = await requestOtp(phoneNumber, "/api/auth/forgot-password");
  return call("POST", "/api/auth/reset-password", {
    env: options.env,
    body: { phoneNumber, otp, newPassword: "n3wPassword" },
  });
}

describe("token revocation in KV", () => {
  it("stores a revocation key for the replaced version, kept for the token lifetime", async () => {
    const { token, user } = await verifiedUser();
    const before = Math.floor(Date.now() / 1000);
    expect((await changePassword(token)).status).toBe(200);
    expect(await env.CACHE.get(revokedKey(user.id, 0))).not.toBeNull();
    const { keys } = await env.CACHE.list({ prefix: `auth:revoked:${user.id}:` });
    expect(keys.map((key) => key.name)).toEqual([revokedKey(user.id, 0)]);
    expect(keys[0]?.expiration).toBeGreaterThanOrEqual(before + 86_400);
    expect(keys[0]?.expiration).toBeLessThanOrEqual(before + 86_400 + 5);
  });

  it("reset-password writes the revocation to KV, so another isolate refuses the old token", async () => {
    const { phoneNumber, token, user } = await verifiedUser();
    expect((await resetPassword(phoneNumber)).status).toBe(200);
    expect(await env.CACHE.get(revokedKey(user.id, 0))).not.toBeNull();
    expectError(await call("GET", "/api/user/me", { token }), 401, "UNAUTHORIZED");
  });

  it("authenticates with one KV read and no D1 round trip, and writes nothing", async () => {
    const { token } = await verifiedUser();
    const kv = faultyKv(env.CACHE, {});
    const d1 = countingD1(env.DB);
    const res = await call("GET", "/api/user/me", { token, env: { ...env, CACHE: kv.binding, DB: d1.binding } });
    // The route's own read is the only D1 round trip.
    expect(res.status).toBe(200);
    expect(kv.calls).toEqual({ get: 1, put: 0 });
    expect(d1.counter.roundTrips).toBe(1);
  });

  it("a request that read the version before a password change cannot write it back over the revocation", async () => {
    const { token, user } = await verifiedUser();
    let release = () => {};
    const held = faultyKv(env.CACHE, { holdPuts: new Promise<void>((resolve) => (release = resolve)) });
    // This request authenticates before the change; any KV write it makes lands only after the change.
    const early = call("GET", "/api/user/me", { token, env: withKv(held.binding) });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await changePassword(token)).status).toBe(200);
    release();
    expect((await early).status).toBe(200);
    expect(held.calls.put).toBe(0);
    expectError(await call("GET", "/api/user/me", { token }), 401, "UNAUTHORIZED");
    expect(await env.CACHE.get(revokedKey(user.id, 0))).not.toBeNull();
  });

  it("refuses tokens issued before this revocation scheme once the password changed, by asking D1", async () => {
    const { token, user } = await verifiedUser();
    const { SignJWT } = await import("jose");
    const legacy = await new SignJWT({ ver: 0 })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(user.id)
      .setIssuer("gemini-backend")
      .setIssuedAt()
      .setExpirationTime("1h")
      .setJti(crypto.randomUUID())
      .sign(new TextEncoder().encode(env.JWT_SECRET));
    expect((await call("GET", "/api/user/me", { token: legacy })).status).toBe(200);
    expect((await changePassword(token)).status).toBe(200);
    // As if the revocation had been made under the previous scheme, which wrote no revocation key.
    await env.CACHE.delete(revokedKey(user.id, 0));
    expectError(await call("GET", "/api/user/me", { token: legacy }), 401, "UNAUTHORIZED");
  });
});

describe("when KV fails", () => {
  it("answers authenticated requests from D1 when the KV read fails, still refusing revoked tokens", async () => {
    const { token } = await verifiedUser();
    const broken = withKv(faultyKv(env.CACHE, { failGets: true }).binding);
    expect((await call("GET", "/api/user/me", { token, env: broken })).status).toBe(200);
    const changed = await changePassword(token);
    expect(changed.status).toBe(200);
    expectError(await call("GET", "/api/user/me", { token, env: broken }), 401, "UNAUTHORIZED");
    expect((await call("GET", "/api/user/me", { token: changed.body.authToken, env: broken })).status).toBe(200);
    expectLogged("error", "KV read failed; checking the token in D1", {
      error: "KV GET failed: 503 Service Unavailable",
    });
  });

  it("reset-password answers 200 when every KV write fails, and the old token is refused from then on", async () => {
    const { phoneNumber, token, user } = await verifiedUser();
    const broken = faultyKv(env.CACHE, { failPuts: Number.POSITIVE_INFINITY });
    const res = await resetPassword(phoneNumber, { env: withKv(broken.binding) });
    expect(res.status).toBe(200);
    expect(broken.calls.put).toBeGreaterThanOrEqual(2);
    expect(await env.CACHE.get(revokedKey(user.id, 0))).toBeNull();
    // KV has no revocation yet: this isolate remembers it, checks the user against D1 and retries the write.
    expectError(await call("GET", "/api/user/me", { token }), 401, "UNAUTHORIZED");
    expect(await env.CACHE.get(revokedKey(user.id, 0))).not.toBeNull();
    expectError(await call("GET", "/api/user/me", { token }), 401, "UNAUTHORIZED");
    expect((await call("POST", "/api/auth/login", { body: { phoneNumber, password: "n3wPassword" } })).status).toBe(
      200,
    );
    expectLogged("error", "Storing a token revocation in KV failed", { userId: user.id, logout: false });
  });

  it("change-password retries a failed KV write in the request and answers 200", async () => {
    const { token, user } = await verifiedUser();
    const flaky = faultyKv(env.CACHE, { failPuts: 1 });
    const res = await changePassword(token, { env: withKv(flaky.binding) });
    expect(res.status).toBe(200);
    expect(flaky.calls.put).toBe(2);
    expect(await env.CACHE.get(revokedKey(user.id, 0))).not.toBeNull();
    expectError(await call("GET", "/api/user/me", { token }), 401, "UNAUTHORIZED");
    expect((await call("GET", "/api/user/me", { token: res.body.authToken })).status).toBe(200);
    expectLogged("error", "Storing a token revocation in KV failed", { userId: user.id, logout: false });
  });

  it("change-password answers 200 with a working token when KV reads and writes all fail", async () => {
    const { token, user } = await verifiedUser();
    const broken = withKv(faultyKv(env.CACHE, { failGets: true, failPuts: Number.POSITIVE_INFINITY }).binding);
    const res = await changePassword(token, { env: broken });
    expect(res.status).toBe(200);
    expect((await call("GET", "/api/user/me", { token: res.body.authToken, env: broken })).status).toBe(200);
    expectError(await call("GET", "/api/user/me", { token, env: broken }), 401, "UNAUTHORIZED");
    expectError(await call("GET", "/api/user/me", { token }), 401, "UNAUTHORIZED");
    expectLogged("error", "KV read failed; checking the token in D1");
    expectLogged("error", "Storing a token revocation in KV failed", { userId: user.id, logout: false });
  });
});

/** The DB binding, where every update of `users` first lets another password change win (bumps the version). */
function racedD1(db: D1Database, userId: string) {
  const updates = new WeakSet<D1PreparedStatement>();
  const bump = () => db.prepare("UPDATE users SET token_version = token_version + 1 WHERE id = ?").bind(userId).run();
  // The password update runs in a batch (with the throttle's bookkeeping); bound copies stay marked.
  const mark = (statement: D1PreparedStatement): D1PreparedStatement => {
    const bind = statement.bind.bind(statement);
    updates.add(statement);
    return Object.assign(statement, { bind: (...values: unknown[]) => mark(bind(...values)) });
  };
  // Requests use the database through a session (withSession): the session races the same way.
  const raced = <T extends D1Database>(database: T): T =>
    new Proxy(database, {
      get(target, property) {
        if (property === "withSession")
          return (...args: unknown[]) =>
            raced((target.withSession as unknown as (...a: unknown[]) => D1Database).apply(target, args));
        if (property === "prepare") {
          return (query: string) =>
            /^update "users"/i.test(query) ? mark(target.prepare(query)) : target.prepare(query);
        }
        if (property === "batch") {
          return async (statements: D1PreparedStatement[]) => {
            if (statements.some((statement) => updates.has(statement))) await bump();
            return target.batch(statements);
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  return raced(db);
}

describe("concurrent password changes", () => {
  it("lets exactly one of two changes with the same token succeed; the other changes nothing", async () => {
    const { phoneNumber, token } = await verifiedUser();
    const results = await Promise.all([
      changePassword(token, { newPassword: "firstPass1" }),
      changePassword(token, { newPassword: "secondPass2" }),
    ]);
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    const winner = results.find((r) => r.status === 200);
    const loser = results.find((r) => r.status !== 200);
    if (!winner || !loser) throw new Error("one winner and one loser expected");
    // Usually both passed the password check before either wrote (409); a late one finds its token revoked.
    if (loser.status === 409) expectError(loser, 409, "PASSWORD_CHANGE_CONFLICT");
    else expectError(loser, 401, "UNAUTHORIZED");
    expect((await call("GET", "/api/user/me", { token: winner.body.authToken })).status).toBe(200);
    expectError(await call("GET", "/api/user/me", { token }), 401, "UNAUTHORIZED");
    const winning = winner === results[0] ? "firstPass1" : "secondPass2";
    expect((await call("POST", "/api/auth/login", { body: { phoneNumber, password: winning } })).status).toBe(200);
  });

  it("answers 409 PASSWORD_CHANGE_CONFLICT and keeps the password when another change wins between check and write", async () => {
    const { phoneNumber, token, user } = await verifiedUser();
    const res = await changePassword(token, { env: { ...env, DB: racedD1(env.DB, user.id) } });
    expectError(res, 409, "PASSWORD_CHANGE_CONFLICT");
    expect((await call("POST", "/api/auth/login", { body: { phoneNumber, password: PASSWORD } })).status).toBe(200);
  });

  it("refuses a second change with the token the first one revoked", async () => {
    const { token } = await verifiedUser();
    expect((await changePassword(token)).status).toBe(200);
    expectError(await changePassword(token, { newPassword: "thirdPass3" }), 401, "UNAUTHORIZED");
  });
});

async function logIn(phoneNumber: string) {
  const res = await call("POST", "/api/auth/login", { body: { phoneNumber, password: PASSWORD } });
  expect(res.status).toBe(200);
  return res.body.authToken as string;
}

describe("POST /api/auth/logout", () => {
  it("ends this token until it expires and leaves the user's other tokens working", async () => {
    const { phoneNumber, token } = await verifiedUser();
    const other = await logIn(phoneNumber);
    const res = await call("POST", "/api/auth/logout", { token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ success: true, message: expect.any(String) });
    expectUnauthorized(await call("GET", "/api/user/me", { token }), /revoked by logout/);
    expectUnauthorized(await call("POST", "/api/auth/logout", { token }), /revoked by logout/);
    expect((await call("GET", "/api/user/me", { token: other })).status).toBe(200);
    const { keys } = await env.CACHE.list({ prefix: loggedOutKey(token) });
    expect(keys[0]?.expiration).toBe(decodeJwt(token).exp);
  });

  it("requires a token", async () => {
    expectUnauthorized(await call("POST", "/api/auth/logout"), /missing/, { tokenSent: false });
  });

  it("still authenticates with one KV request (both revocation keys in one read) and no D1 round trip", async () => {
    const { phoneNumber, token } = await verifiedUser();
    expect((await call("POST", "/api/auth/logout", { token: await logIn(phoneNumber) })).status).toBe(200);
    const kv = faultyKv(env.CACHE, {});
    const d1 = countingD1(env.DB);
    const res = await call("GET", "/api/user/me", { token, env: { ...env, CACHE: kv.binding, DB: d1.binding } });
    expect(res.status).toBe(200);
    expect(kv.calls).toEqual({ get: 1, put: 0 });
    expect(d1.counter.roundTrips).toBe(1); // the route's own read
  });

  it("answers 200 when every KV write fails, and the token is refused from then on", async () => {
    const { token, user } = await verifiedUser();
    const broken = faultyKv(env.CACHE, { failPuts: Number.POSITIVE_INFINITY });
    const res = await call("POST", "/api/auth/logout", { token, env: withKv(broken.binding) });
    expect(res.status).toBe(200);
    expect(broken.calls.put).toBeGreaterThanOrEqual(2);
    expect(await env.CACHE.get(loggedOutKey(token))).toBeNull();
    // KV has no revocation yet: this isolate remembers the token and retries the write.
    expectUnauthorized(await call("GET", "/api/user/me", { token }), /revoked by logout/);
    expect(await env.CACHE.get(loggedOutKey(token))).not.toBeNull();
    expectUnauthorized(await call("GET", "/api/user/me", { token }), /revoked by logout/);
    expectLogged("error", "Storing a token revocation in KV failed", { userId: user.id, logout: true });
  });
});

describe("POST /api/auth/logout-all", () => {
  it("ends every token of the user, as a password change does, and the password keeps working", async () => {
    const { phoneNumber, token, user } = await verifiedUser();
    const other = await logIn(phoneNumber);
    const res = await call("POST", "/api/auth/logout-all", { token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ success: true, message: expect.any(String) });
    expect(await env.CACHE.get(revokedKey(user.id, 0))).not.toBeNull();
    expectUnauthorized(await call("GET", "/api/user/me", { token }), /logout-all/);
    expectUnauthorized(await call("GET", "/api/user/me", { token: other }), /logout-all/);
    expect((await call("GET", "/api/user/me", { token: await logIn(phoneNumber) })).status).toBe(200);
  });

  it("answers 401 revoked, changing nothing, when D1 has moved past the token's version and KV has not heard yet", async () => {
    const { token, user } = await verifiedUser();
    await env.DB.prepare("UPDATE users SET token_version = token_version + 1 WHERE id = ?").bind(user.id).run();
    expectUnauthorized(await call("POST", "/api/auth/logout-all", { token }), /revoked/);
    const row = await env.DB.prepare("SELECT token_version FROM users WHERE id = ?")
      .bind(user.id)
      .first<{ token_version: number }>();
    expect(row?.token_version).toBe(1);
  });

  it("answers 200 when every KV write fails, and the old tokens are refused from then on", async () => {
    const { phoneNumber, token, user } = await verifiedUser();
    const other = await logIn(phoneNumber);
    const broken = faultyKv(env.CACHE, { failPuts: Number.POSITIVE_INFINITY });
    expect((await call("POST", "/api/auth/logout-all", { token, env: withKv(broken.binding) })).status).toBe(200);
    expectUnauthorized(await call("GET", "/api/user/me", { token: other }), /revoked/);
    expectUnauthorized(await call("GET", "/api/user/me", { token }), /revoked/);
    expectLogged("error", "Storing a token revocation in KV failed", { userId: user.id, logout: false });
  });

  it("requires a token", async () => {
    expectUnauthorized(await call("POST", "/api/auth/logout-all"), /missing/, { tokenSent: false });
  });
});
