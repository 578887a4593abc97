import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { billingEnv, deliver, inDays, subscriptionEvent } from "./billing-helpers";
import { call, createChatroom, expectError, PASSWORD, runConsumer, sendPrompt, signUp, verifiedUser } from "./helpers";
import { openStream } from "./live-helpers";
import { expectLogged } from "./logs";
import { geminiText, stripeSubscription, stubGemini, stubStripe } from "./stubs";

afterEach(() => {
  vi.restoreAllMocks();
});

const aiEnv = (): Env => ({ ...env, GEMINI_API_KEY: "test-key" });

const deleteAccount = (token: string, password = PASSWORD, options: { env?: Env; ip?: string } = {}) =>
  call("POST", "/api/user/delete-account", {
    token,
    body: { password },
    env: options.env,
    headers: options.ip ? { "CF-Connecting-IP": options.ip } : {},
  });

const userIdOf = (user: { user: { id: string } }) => user.user.id;

/** A chatroom with one answered prompt whose words contain `marker`. */
async function answeredRoom(token: string, marker: string) {
  const room = await createChatroom(token);
  const promptId = await sendPrompt(token, room.id, `Tell me about ${marker} please`);
  stubGemini(() => geminiText(`Here is ${marker} explained`));
  await runConsumer([{ promptId }], { env: aiEnv() });
  vi.restoreAllMocks();
  return { room, promptId };
}

/** Every table of the database (FTS5's shadow tables included), by name. */
async function allTables() {
  const { results } = await env.DB.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name",
  ).all<{ name: string }>();
  return results.map((row) => row.name);
}

/** Every row of every table that mentions one of `needles`, as "table: row". */
async function rowsMentioning(needles: string[]) {
  const found: string[] = [];
  for (const table of await allTables()) {
    const { results } = await env.DB.prepare(`SELECT * FROM "${table}"`).all();
    for (const row of results) {
      const text = JSON.stringify(row, (_key, value) =>
        value instanceof ArrayBuffer ? new TextDecoder().decode(value) : value,
      );
      if (needles.some((needle) => text.includes(needle))) found.push(`${table}: ${text}`);
    }
  }
  return found;
}

describe("POST /api/user/delete-account", () => {
  it("deletes every row of the user, in every table, and nothing of anyone else", async () => {
    const owner = await verifiedUser();
    const other = await verifiedUser();
    const marker = `zephyrine${crypto.randomUUID().slice(0, 6)}`;
    const { room, promptId } = await answeredRoom(owner.token, marker);
    const kept = await answeredRoom(other.token, marker);
    // Something in every table that can hold the user's data: feedback, a share, an idempotency key,
    // a branch, the sign-up's OTP, a failed login (phone) and a failed delete (user) attempt.
    const reply = (await call("GET", `/api/chatroom/${room.id}/messages`, { token: owner.token })).body.messages.at(-1);
    expect(
      (
        await call("PUT", `/api/chatroom/${room.id}/message/${reply.id}/feedback`, {
          token: owner.token,
          body: { rating: "up" },
        })
      ).status,
    ).toBe(200);
    const share = await call("POST", `/api/chatroom/${room.id}/share`, { token: owner.token });
    expect(share.status).toBe(201);
    const edit = await call("POST", `/api/chatroom/${room.id}/message/${promptId}/edit`, {
      token: owner.token,
      body: { userMessage: `Edited ${marker}` },
      headers: { "Idempotency-Key": `key-${marker}` },
    });
    expect(edit.status).toBe(202);
    expect(
      (await call("POST", "/api/auth/login", { body: { phoneNumber: owner.phoneNumber, password: "wrong-1" } })).status,
    ).toBe(401);
    expectError(await deleteAccount(owner.token, "wrong-2"), 401, "INVALID_CREDENTIALS");
    await call("GET", "/api/chatroom", { token: owner.token });
    const search = await call("GET", `/api/search?q=${marker}`, { token: owner.token });
    expect(search.body.results.length).toBeGreaterThan(0);

    const ownerId = userIdOf(owner);
    const messageIds = (
      await env.DB.prepare("SELECT id FROM messages WHERE chatroom_id = ?").bind(room.id).all<{ id: string }>()
    ).results.map((m) => m.id);
    const needles = [ownerId, owner.phoneNumber, room.id, share.body.share.id, ...messageIds];
    const keyOf = async (userId: string) =>
      (await env.DB.prepare("SELECT search_key FROM users WHERE id = ?").bind(userId).first<{ search_key: string }>())
        ?.search_key as string;
    const ownerKey = await keyOf(ownerId);
    const postings = async (key: string) =>
      (
        await env.DB.prepare("SELECT count(*) AS n FROM message_terms WHERE message_terms MATCH ?")
          .bind(`terms : "${key}${marker}"`)
          .first<{ n: number }>()
      )?.n;
    expect(await postings(ownerKey)).toBeGreaterThan(0);
    // The scan sees what it looks for while the account exists.
    expect((await rowsMentioning(needles)).length).toBeGreaterThan(5);

    const res = await deleteAccount(owner.token);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ success: true, message: expect.any(String), deleted: true });

    expect(await rowsMentioning(needles)).toEqual([]);
    // The full-text index holds no posting under the user's search key. Its pages may keep the bytes of
    // deleted terms until FTS5 next merges them, but no row anywhere says whose key that was.
    expect(await postings(ownerKey)).toBe(0);
    expect((await rowsMentioning([ownerKey])).filter((row) => !row.startsWith("message_terms_data:"))).toEqual([]);
    // The other user's copy of the word is still found.
    expect(await postings(await keyOf(userIdOf(other)))).toBe(2);
    const theirs = await call("GET", `/api/search?q=${marker}`, { token: other.token });
    expect(theirs.body.results.map((r: { chatroomId: string }) => r.chatroomId)).toEqual([kept.room.id, kept.room.id]);
    expect((await call("GET", "/api/user/me", { token: other.token })).status).toBe(200);
  });

  it("stops every token and stream ticket of the user at once", async () => {
    const { token, phoneNumber } = await verifiedUser();
    const room = await createChatroom(token);
    const ticket = (await call("POST", `/api/chatroom/${room.id}/stream-ticket`, { token })).body.ticket as string;
    const second = await call("POST", "/api/auth/login", { body: { phoneNumber, password: PASSWORD } });
    expect(second.status).toBe(200);
    expect((await deleteAccount(token)).status).toBe(200);
    for (const used of [token, second.body.authToken as string]) {
      expectError(await call("GET", "/api/chatroom", { token: used }), 401, "UNAUTHORIZED");
      expectError(await call("POST", "/api/chatroom", { token: used, body: { name: "after" } }), 401, "UNAUTHORIZED");
    }
    expectError(await call("GET", `/api/chatroom/${room.id}/events?ticket=${ticket}`), 401, "UNAUTHORIZED");
    expectError(await deleteAccount(token), 401, "UNAUTHORIZED");
  });

  it("ends the open streams of every chatroom with deleted", async () => {
    const { token } = await verifiedUser();
    const rooms = [await createChatroom(token), await createChatroom(token)];
    const id = await sendPrompt(token, rooms[0]?.id ?? "");
    const streams = await Promise.all(
      rooms.map((room) => openStream("GET", `/api/chatroom/${room.id}/events`, { token })),
    );
    const prompt = await openStream("GET", `/api/chatroom/${rooms[0]?.id}/message/${id}/stream`, { token });
    expect((await prompt.next())?.event).toBe("prompt");
    expect((await deleteAccount(token)).status).toBe(200);
    for (const [index, stream] of streams.entries()) {
      expect(await stream.rest()).toEqual([
        { id: expect.any(String), event: "deleted", data: { chatroomId: rooms[index]?.id } },
      ]);
    }
    expect((await prompt.rest()).map((event) => event.event)).toEqual(["deleted"]);
  });

  it("drops queued prompts unanswered", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    const id = await sendPrompt(token, room.id);
    expect((await deleteAccount(token)).status).toBe(200);
    const calls = stubGemini(() => geminiText("never"));
    expect(await runConsumer([{ promptId: id }], { env: aiEnv() })).toEqual({ acked: 1, retried: [] });
    expect(calls).toHaveLength(0);
  });

  it("removes the cached chatroom lists", async () => {
    const owner = await verifiedUser();
    await createChatroom(owner.token);
    await call("GET", "/api/chatroom", { token: owner.token });
    await createChatroom(owner.token);
    await call("GET", "/api/chatroom", { token: owner.token });
    const prefix = `chatrooms:list:${userIdOf(owner)}:`;
    expect((await env.CACHE.list({ prefix })).keys).toHaveLength(2);
    expect((await deleteAccount(owner.token)).status).toBe(200);
    expect((await env.CACHE.list({ prefix })).keys).toEqual([]);
  });

  it("takes the user's shared links down", async () => {
    const { token } = await verifiedUser();
    const { room } = await answeredRoom(token, "sharedword");
    const share = await call("POST", `/api/chatroom/${room.id}/share`, { token });
    expect((await call("GET", `/api/shared/${share.body.share.id}`)).status).toBe(200);
    expect((await deleteAccount(token)).status).toBe(200);
    expectError(await call("GET", `/api/shared/${share.body.share.id}`), 404, "NOT_FOUND");
  });

  it("frees the phone number: it signs up again as a new, empty account", async () => {
    const first = await verifiedUser();
    await createChatroom(first.token);
    expect((await deleteAccount(first.token)).status).toBe(200);
    const again = await signUp({ phoneNumber: first.phoneNumber });
    expect(again.user.id).not.toBe(userIdOf(first));
    expectError(
      await call("POST", "/api/auth/login", { body: { phoneNumber: first.phoneNumber, password: PASSWORD } }),
      403,
      "PHONE_NOT_VERIFIED",
    );
  });

  it("checks the password first: a wrong one deletes nothing and counts as a failed attempt", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    for (let i = 0; i < 10; i++) expectError(await deleteAccount(token, `wrong-${i}`), 401, "INVALID_CREDENTIALS");
    expect((await call("GET", `/api/chatroom/${room.id}`, { token })).status).toBe(200);
    // Past the limit even the right password waits.
    const throttled = await deleteAccount(token);
    expectError(throttled, 429, "TOO_MANY_ATTEMPTS");
    expect(Number(throttled.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect((await call("GET", `/api/chatroom/${room.id}`, { token })).status).toBe(200);
  });

  it("refuses a body without a password", async () => {
    const { token } = await verifiedUser();
    expectError(await call("POST", "/api/user/delete-account", { token, body: {} }), 400, "VALIDATION_FAILED");
    expectError(
      await call("POST", "/api/user/delete-account", {
        token,
        rawBody: "{",
        headers: { "Content-Type": "application/json" },
      }),
      400,
      "INVALID_JSON",
    );
    expect((await call("GET", "/api/user/me", { token })).status).toBe(200);
  });
});

/** A user with a live Stripe subscription, as checkout and its webhook leave them. */
async function subscriber(status = "active") {
  const user = await verifiedUser();
  const id = userIdOf(user);
  const customerId = `cus_${crypto.randomUUID().slice(0, 12)}`;
  const subscriptionId = `sub_${crypto.randomUUID().slice(0, 12)}`;
  const now = Date.now();
  await env.DB.prepare(
    "INSERT INTO subscriptions (user_id, stripe_customer_id, stripe_subscription_id, status, current_period_end, cancel_at_period_end, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6)",
  )
    .bind(id, customerId, subscriptionId, status, now + 30 * 86_400_000, now)
    .run();
  const stripe = stubStripe();
  stripe.state.subscriptions.set(
    subscriptionId,
    stripeSubscription({ id: subscriptionId, customer: customerId, status, periodEnd: inDays(30), userId: id }),
  );
  return { ...user, id, customerId, subscriptionId, stripe };
}

describe("POST /api/user/delete-account with a Stripe subscription", () => {
  it("cancels the subscription through Stripe's API, then deletes", async () => {
    const user = await subscriber();
    const res = await deleteAccount(user.token, PASSWORD, { env: billingEnv() });
    expect(res.status).toBe(200);
    expect(user.stripe.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      `DELETE /v1/subscriptions/${user.subscriptionId}`,
    ]);
    expect(user.stripe.state.subscriptions.get(user.subscriptionId)?.status).toBe("canceled");
    expect(
      await env.DB.prepare("SELECT count(*) AS n FROM subscriptions WHERE user_id = ?").bind(user.id).first("n"),
    ).toBe(0);
  });

  it("answers 502 BILLING_UNAVAILABLE and deletes nothing when Stripe cannot cancel", async () => {
    const user = await subscriber();
    const room = await createChatroom(user.token);
    user.stripe.state.fail = { status: 500, body: { error: { type: "api_error", message: "Stripe internal detail" } } };
    const res = await deleteAccount(user.token, PASSWORD, { env: billingEnv() });
    expectError(res, 502, "BILLING_UNAVAILABLE");
    expect(JSON.stringify(res.body)).not.toContain("Stripe internal detail");
    expect((await call("GET", `/api/chatroom/${room.id}`, { token: user.token })).status).toBe(200);
    const me = await call("GET", "/api/user/me", { token: user.token, env: billingEnv() });
    expect(me.body.user.tier).toBe("pro");
    const failed = expectLogged("error", "Cancelling a subscription failed", {
      subscriptionId: user.subscriptionId,
      status: 500,
    });
    expect(failed.map((entry) => entry.operation)).toEqual(["subscriptions.cancel", "subscriptions.retrieve"]);
  });

  it("answers 502 when billing is not configured while a subscription is live", async () => {
    const user = await subscriber();
    expectError(
      await deleteAccount(user.token, PASSWORD, { env: billingEnv({ STRIPE_SECRET_KEY: "" }) }),
      502,
      "BILLING_UNAVAILABLE",
    );
    expect((await call("GET", "/api/user/me", { token: user.token })).status).toBe(200);
    expect(user.stripe.calls).toEqual([]);
    expectLogged("error", "Cancelling a subscription failed", {
      operation: "configure",
      code: "BILLING_NOT_CONFIGURED",
    });
  });

  it("deletes without calling Stripe when the subscription has already ended", async () => {
    const user = await subscriber("canceled");
    expect((await deleteAccount(user.token, PASSWORD, { env: billingEnv() })).status).toBe(200);
    expect(user.stripe.calls).toEqual([]);
  });

  it("goes on when Stripe says the subscription has already ended", async () => {
    const user = await subscriber();
    const known = user.stripe.state.subscriptions.get(user.subscriptionId) as Record<string, unknown>;
    known.status = "canceled";
    expect((await deleteAccount(user.token, PASSWORD, { env: billingEnv() })).status).toBe(200);
    expect(user.stripe.calls.map((c) => c.method)).toEqual(["DELETE", "GET"]);
    expectLogged("error", "Cancelling a subscription failed", {
      operation: "subscriptions.cancel",
      subscriptionId: user.subscriptionId,
      type: "StripeInvalidRequestError",
    });
    expectLogged("info", "account deleted", { userId: user.id });
  });

  it("answers later webhooks about the old customer 200 and changes nothing", async () => {
    const user = await subscriber();
    expect((await deleteAccount(user.token, PASSWORD, { env: billingEnv() })).status).toBe(200);
    vi.restoreAllMocks();
    const fields = { id: user.subscriptionId, customer: user.customerId, periodEnd: inDays(30), userId: user.id };
    for (const event of [
      subscriptionEvent("customer.subscription.deleted", { ...fields, status: "canceled" }),
      subscriptionEvent("customer.subscription.updated", { ...fields, status: "active" }),
    ]) {
      expect((await deliver(event)).status).toBe(200);
    }
    const left = await env.DB.prepare(
      "SELECT count(*) AS n FROM subscriptions WHERE stripe_customer_id = ? OR user_id = ?",
    )
      .bind(user.customerId, user.id)
      .first("n");
    expect(left).toBe(0);
  });
});
