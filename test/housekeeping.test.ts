import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDb } from "../src/db/client";
import { indexMissingWords } from "../src/features/search";
import worker from "../src/index";
import { call, createChatroom, sendPrompt, verifiedUser } from "./helpers";

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/** Runs the Worker's cron handler as the runtime would at `at`. */
async function runCron(at = Date.now()) {
  const controller = createScheduledController({ scheduledTime: at, cron: "*/15 * * * *" });
  const ctx = createExecutionContext();
  await (worker.scheduled as ExportedHandlerScheduledHandler<Env>)(controller, env, ctx);
  await waitOnExecutionContext(ctx);
}

const count = async (sql: string, ...params: unknown[]) =>
  (
    (await env.DB.prepare(sql)
      .bind(...params)
      .first<{ n: number }>()) ?? { n: 0 }
  ).n;

describe("the scheduled housekeeping", () => {
  it("settles a prompt pending past 30 minutes as failed, quota back and retryable; a younger one is left", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    const lost = await sendPrompt(token, room.id, "lost in the queue");
    const young = await sendPrompt(token, room.id, "still on its way");
    await env.DB.prepare("UPDATE messages SET updated_at = updated_at - ? WHERE id = ?")
      .bind(31 * MINUTE, lost)
      .run();
    await env.DB.prepare("UPDATE messages SET updated_at = updated_at - ? WHERE id = ?")
      .bind(29 * MINUTE, young)
      .run();
    await runCron();
    const read = async (id: string) => (await call("GET", `/api/chatroom/${room.id}/message/${id}`, { token })).body;
    expect((await read(lost)).prompt).toMatchObject({ status: "failed", reply: { status: "failed" } });
    expect((await read(young)).prompt.status).toBe("pending");
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(1);
    expect((await call("POST", `/api/chatroom/${room.id}/message/${lost}/retry`, { token })).status).toBe(202);
  });

  it("adds the search words of a recent message stored without them, once", async () => {
    const { token, user } = await verifiedUser();
    const room = await createChatroom(token);
    await sendPrompt(token, room.id, "indexed azulejo");
    // As the code before the per-user index stored a prompt: its row and search_docs entry, no words.
    await env.DB.prepare(
      "INSERT INTO messages (id, chatroom_id, user_id, role, content, status, created_at, updated_at) VALUES (?1, ?2, ?3, 'user', 'stored in between: quokka', 'completed', ?4, ?4)",
    )
      .bind(crypto.randomUUID(), room.id, user.id, Date.now())
      .run();
    const found = async (q: string) => (await call("GET", `/api/search?q=${q}`, { token })).body.results.length;
    expect(await found("quokka")).toBe(0);
    // Two runs at once (a slow run overlapping the next) add the words once.
    const db = createDb(env.DB);
    await Promise.all([indexMissingWords(db), indexMissingWords(db)]);
    expect(await found("quokka")).toBe(1);
    await runCron();
    expect(await found("quokka")).toBe(1);
    expect(await found("azulejo")).toBe(1);
    // Each message's words once: one row of the index per indexed message.
    expect(await count("SELECT count(*) AS n FROM message_terms_docsize")).toBe(
      await count("SELECT count(*) AS n FROM search_docs"),
    );
  });

  it("deletes only what is past its use, in bounded batches", async () => {
    const { token, user } = await verifiedUser();
    const now = Date.now();
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    const old = 1_200;
    const statements = [];
    for (let i = 0; i < old; i++) {
      statements.push(
        env.DB.prepare(
          "INSERT INTO idempotency_keys (user_id, key, message_id, fingerprint, created_at) VALUES (?, ?, 'm', 'f', ?)",
        ).bind(user.id, `old-${i}`, now - DAY - MINUTE),
      );
    }
    statements.push(
      env.DB.prepare(
        "INSERT INTO idempotency_keys (user_id, key, message_id, fingerprint, created_at) VALUES (?, 'fresh', 'm', 'f', ?)",
      ).bind(user.id, now - DAY + MINUTE),
      env.DB.prepare("INSERT INTO prompt_usage (user_id, day, count) VALUES (?, ?, 3), (?, ?, 2), (?, ?, 1)").bind(
        user.id,
        day(now - 2 * DAY),
        user.id,
        day(now - DAY),
        user.id,
        day(now),
      ),
      env.DB.prepare(
        "INSERT INTO auth_attempts (id, subject, ip, at) VALUES ('att_old', 'phone:+1', '203.0.113.9', ?), ('att_recent', 'phone:+1', '203.0.113.9', ?)",
      ).bind(now - 61 * MINUTE, now - 14 * MINUTE),
      env.DB.prepare(
        "INSERT INTO stripe_events (id, type, delivery_id, processed_at) VALUES ('evt_old', 't', 'd', ?), ('evt_recent', 't', 'd', ?)",
      ).bind(now - 31 * DAY, now - 29 * DAY),
      env.DB.prepare(
        "INSERT INTO otps (id, user_id, purpose, code_hash, attempts, expires_at, created_at) VALUES ('otp_old', ?, 'login', 'h', 0, ?, ?), ('otp_recent', ?, 'login', 'h', 0, ?, ?)",
      ).bind(
        user.id,
        now - 3 * 60 * MINUTE,
        now - 3 * 60 * MINUTE - 5 * MINUTE,
        user.id,
        now - 55 * MINUTE,
        now - 60 * MINUTE,
      ),
    );
    await env.DB.batch(statements);

    await runCron(now);
    expect(await count("SELECT count(*) AS n FROM idempotency_keys WHERE user_id = ?", user.id)).toBe(1);
    expect(
      await count("SELECT count(*) AS n FROM prompt_usage WHERE user_id = ? AND day < ?", user.id, day(now - DAY)),
    ).toBe(0);
    expect(await count("SELECT count(*) AS n FROM prompt_usage WHERE user_id = ?", user.id)).toBe(2);
    expect(await count("SELECT count(*) AS n FROM stripe_events WHERE id IN ('evt_old', 'evt_recent')")).toBe(1);
    expect(await count("SELECT count(*) AS n FROM stripe_events WHERE id = 'evt_recent'")).toBe(1);
    expect(await count("SELECT count(*) AS n FROM otps WHERE id IN ('otp_old', 'otp_recent')")).toBe(1);
    expect(await count("SELECT count(*) AS n FROM otps WHERE id = 'otp_recent'")).toBe(1);
    expect(await count("SELECT count(*) AS n FROM auth_attempts WHERE id IN ('att_old', 'att_recent')")).toBe(1);
    expect(await count("SELECT count(*) AS n FROM auth_attempts WHERE id = 'att_recent'")).toBe(1);
    // Today's count is what /user/me shows: untouched.
    expect((await call("GET", "/api/user/me", { token })).body.user.usage.used).toBe(1);
  });
});
