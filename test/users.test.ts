import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, countingD1, expectError, verifiedUser } from "./helpers";

describe("GET /api/user/me", () => {
  it("returns the profile, Basic tier and today's usage with the reset at the next 00:00 UTC", async () => {
    const { token, user } = await verifiedUser();
    const res = await call("GET", "/api/user/me", { token });
    expect(res.status).toBe(200);
    const now = new Date();
    const midnight = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
    expect(res.body).toEqual({
      success: true,
      message: expect.any(String),
      user: {
        ...user,
        tier: "basic",
        usage: { used: 0, limit: 5, remaining: 5, resetsAt: midnight.toISOString() },
      },
    });
    expect(JSON.stringify(res.body)).not.toMatch(/password|tokenVersion/i);
  });

  it("uses one D1 round trip once the token version is cached", async () => {
    const { token } = await verifiedUser();
    await call("GET", "/api/user/me", { token });
    const { binding, counter } = countingD1(env.DB);
    expect((await call("GET", "/api/user/me", { token, env: { ...env, DB: binding } })).status).toBe(200);
    expect(counter.roundTrips).toBe(1);
  });

  it("returns 401 UNAUTHORIZED without a token", async () => {
    expectError(await call("GET", "/api/user/me"), 401, "UNAUTHORIZED");
  });
});
