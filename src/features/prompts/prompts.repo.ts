import { and, eq, type SQL, sql } from "drizzle-orm";
import { type Database, toStatement } from "../../db/client";
import {
  chatrooms,
  type FEEDBACK_RATINGS,
  idempotencyKeys,
  type MESSAGE_STATUSES,
  messages,
  promptUsage,
} from "../../db/schema";
import { proCondition } from "../billing";
import { BASIC_DAILY_PROMPT_LIMIT } from "./quota";

type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/** What a Pro user's count is compared with: large enough never to be reached. */
const UNLIMITED = Number.MAX_SAFE_INTEGER;

export type MessageRow = {
  id: string;
  chatroom_id: string;
  user_id: string;
  role: "user" | "assistant";
  content: string;
  status: MessageStatus;
  reply_to: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  quota_day: string | null;
  /** Bumped by each retry: a settle must name the run it belongs to. */
  incarnation: number;
  created_at: number;
};

const ownsRoom = (userId: string, chatroomId: string) =>
  sql`EXISTS (SELECT 1 FROM ${chatrooms} WHERE ${chatrooms.id} = ${chatroomId} AND ${chatrooms.userId} = ${userId})`;

/**
 * True when the quota statement earlier in the same batch granted a unit to `grant`, a value unique
 * to this request (see promptUsage.lastMessageId).
 */
const unitGranted = (userId: string, day: string, grant: string) =>
  sql`EXISTS (SELECT 1 FROM ${promptUsage} WHERE ${promptUsage.userId} = ${userId} AND ${promptUsage.day} = ${day} AND ${promptUsage.lastMessageId} = ${grant})`;

/** Takes one unit of today's quota for `grant`, unless the limit for the user's tier is reached. */
const takeQuotaUnit = (userId: string, day: string, grant: string, now: Date, condition: SQL) =>
  sql`INSERT INTO ${promptUsage} (user_id, day, count, last_message_id)
    SELECT ${userId}, ${day}, 1, ${grant} WHERE ${condition}
    ON CONFLICT (user_id, day) DO UPDATE SET count = count + 1, last_message_id = excluded.last_message_id
      WHERE ${promptUsage.count} < (CASE WHEN ${proCondition(userId, now)} THEN ${UNLIMITED} ELSE ${BASIC_DAILY_PROMPT_LIMIT} END)
    RETURNING count`;

export type NewPrompt = {
  id: string;
  userId: string;
  chatroomId: string;
  content: string;
  day: string;
  now: Date;
  idempotency?: { key: string; fingerprint: string; notBefore: Date };
};

export type RecordedPrompt =
  | { kind: "not-found" }
  | { kind: "replay"; messageId: string; fingerprint: string; response: string | null }
  | { kind: "limited"; pro: boolean }
  | { kind: "stored"; pro: boolean; used: number };

/**
 * Checks the room, the idempotency key and the quota, and stores the prompt: one batch, so one
 * round trip and one transaction. Each statement is conditional on the ones before it, which is
 * what makes 20 concurrent sends give exactly 5 prompts on a Basic day.
 */
export async function recordPrompt(db: Database, prompt: NewPrompt): Promise<RecordedPrompt> {
  const { id, userId, chatroomId, day, now, idempotency } = prompt;
  const keyClaimed = idempotency
    ? sql` AND EXISTS (SELECT 1 FROM ${idempotencyKeys} WHERE ${idempotencyKeys.userId} = ${userId} AND ${idempotencyKeys.key} = ${idempotency.key} AND ${idempotencyKeys.messageId} = ${id})`
    : sql``;
  const keyStatements = idempotency
    ? [
        sql`DELETE FROM ${idempotencyKeys} WHERE user_id = ${userId} AND key = ${idempotency.key} AND created_at < ${idempotency.notBefore.getTime()}`,
        sql`INSERT INTO ${idempotencyKeys} (user_id, key, message_id, fingerprint, created_at)
          SELECT ${userId}, ${idempotency.key}, ${id}, ${idempotency.fingerprint}, ${now.getTime()} WHERE ${ownsRoom(userId, chatroomId)}
          ON CONFLICT DO NOTHING`,
      ]
    : [];
  const statements = [
    sql`SELECT ${ownsRoom(userId, chatroomId)} AS owned, ${proCondition(userId, now)} AS pro`,
    ...keyStatements,
    takeQuotaUnit(userId, day, id, now, sql`${ownsRoom(userId, chatroomId)}${keyClaimed}`),
    sql`INSERT INTO ${messages} (id, chatroom_id, user_id, role, content, status, quota_day, created_at, updated_at)
      SELECT ${id}, ${chatroomId}, ${userId}, 'user', ${prompt.content}, 'pending', ${day}, ${now.getTime()}, ${now.getTime()}
      WHERE ${unitGranted(userId, day, id)}`,
    sql`UPDATE ${chatrooms} SET last_message_at = ${now.getTime()}
      WHERE id = ${chatroomId} AND EXISTS (SELECT 1 FROM ${messages} WHERE ${messages.id} = ${id})`,
    ...(idempotency
      ? [
          sql`SELECT message_id, fingerprint, response FROM ${idempotencyKeys} WHERE user_id = ${userId} AND key = ${idempotency.key}`,
        ]
      : []),
  ];
  const results = await db.$client.batch(statements.map((statement) => toStatement(db, statement)));
  const flags = results[0]?.results[0] as { owned: number; pro: number } | undefined;
  if (!flags?.owned) return { kind: "not-found" };
  const pro = flags.pro === 1;
  if (idempotency) {
    const claim = results.at(-1)?.results[0] as { message_id: string; fingerprint: string; response: string | null };
    if (claim && claim.message_id !== id) {
      return { kind: "replay", messageId: claim.message_id, fingerprint: claim.fingerprint, response: claim.response };
    }
  }
  const counted = results[1 + keyStatements.length]?.results[0] as { count: number } | undefined;
  if (!counted) return { kind: "limited", pro };
  return { kind: "stored", pro, used: counted.count };
}

export async function saveIdempotentResponse(
  db: Database,
  userId: string,
  key: string,
  messageId: string,
  response: string,
) {
  await db.$client.batch([
    toStatement(
      db,
      sql`UPDATE ${idempotencyKeys} SET response = ${response} WHERE user_id = ${userId} AND key = ${key} AND message_id = ${messageId}`,
    ),
  ]);
}

/** Frees a key whose request was refused (429), so the same key may be used again later. */
export async function releaseIdempotencyKey(db: Database, userId: string, key: string, messageId: string) {
  await db.$client.batch([
    toStatement(
      db,
      sql`DELETE FROM ${idempotencyKeys} WHERE user_id = ${userId} AND key = ${key} AND message_id = ${messageId}`,
    ),
  ]);
}

/** Today's count and tier, for /user/me and the subscription status. */
export async function readQuotaState(db: Database, userId: string, day: string, now: Date) {
  const [row] = await db.all<{ used: number | null; pro: number }>(
    sql`SELECT (SELECT ${promptUsage.count} FROM ${promptUsage} WHERE ${promptUsage.userId} = ${userId} AND ${promptUsage.day} = ${day}) AS used, ${proCondition(userId, now)} AS pro`,
  );
  return { used: row?.used ?? 0, pro: row?.pro === 1 };
}

const promptWithReply = (userId: string, chatroomId: string, promptId: string) =>
  sql`SELECT p.id, p.chatroom_id, p.content, p.status, p.created_at, p.incarnation,
      r.id AS reply_id, r.content AS reply_content, r.status AS reply_status, r.created_at AS reply_created_at,
      r.prompt_tokens, r.completion_tokens, r.feedback_rating, r.feedback_comment, r.feedback_at
    FROM ${messages} p LEFT JOIN ${messages} r ON r.reply_to = p.id
    WHERE p.id = ${promptId} AND p.chatroom_id = ${chatroomId} AND p.user_id = ${userId} AND p.role = 'user'`;

export type PromptWithReplyRow = {
  id: string;
  chatroom_id: string;
  content: string;
  status: MessageStatus;
  created_at: number;
  /** The prompt's run: bumped by each retry. */
  incarnation: number;
  reply_id: string | null;
  reply_content: string | null;
  reply_status: Exclude<MessageStatus, "pending"> | null;
  reply_created_at: number | null;
  feedback_rating: (typeof FEEDBACK_RATINGS)[number] | null;
  feedback_comment: string | null;
  feedback_at: number | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
};

export async function findPromptWithReply(db: Database, userId: string, chatroomId: string, promptId: string) {
  const [row] = await db.all<PromptWithReplyRow>(promptWithReply(userId, chatroomId, promptId));
  return row;
}

/** The prompt and the conversation before it (newest first, at most `limit`), in one round trip. */
export async function loadPromptContext(db: Database, promptId: string, limit: number) {
  const [prompt, history] = await db.$client.batch([
    toStatement(db, sql`SELECT * FROM ${messages} WHERE id = ${promptId} AND role = 'user'`),
    // Failed prompts and the error notes answering them are not part of the conversation; a cancelled
    // prompt is, with the partial reply it kept (one cancelled before any text is left out).
    toStatement(
      db,
      sql`SELECT * FROM ${messages} m
        WHERE chatroom_id = (SELECT chatroom_id FROM ${messages} WHERE id = ${promptId})
          AND id <= ${promptId}
          AND (status = 'completed' OR id = ${promptId}
            OR (status = 'cancelled' AND (role = 'assistant' OR EXISTS (SELECT 1 FROM ${messages} r WHERE r.reply_to = m.id))))
        ORDER BY id DESC LIMIT ${limit}`,
    ),
  ]);
  return {
    prompt: prompt?.results[0] as MessageRow | undefined,
    history: (history?.results ?? []) as MessageRow[],
  };
}

export type ReplyToStore = {
  replyId: string;
  prompt: Pick<MessageRow, "id" | "chatroom_id" | "user_id" | "quota_day" | "incarnation">;
  content: string;
  outcome: "completed" | "failed" | "cancelled";
  tokens?: { prompt: number | null; completion: number | null };
  now: Date;
};

/** The prompt is still pending in the run (incarnation) the caller loaded, not retried since. */
const stillPending = (prompt: Pick<MessageRow, "id" | "incarnation">) =>
  sql`EXISTS (SELECT 1 FROM ${messages} WHERE ${messages.id} = ${prompt.id} AND ${messages.status} = 'pending' AND ${messages.incarnation} = ${prompt.incarnation})`;

/**
 * Settles a pending prompt as cancelled with no reply, giving its quota unit back. One batch, so one
 * transaction: the prompt is still pending in the second statement exactly when it was in the first.
 * True when this call is the one that cancelled it.
 */
export async function cancelWithoutReply(
  db: Database,
  prompt: Pick<MessageRow, "id" | "chatroom_id" | "user_id" | "quota_day" | "incarnation">,
  now: Date,
): Promise<boolean> {
  const pending = stillPending(prompt);
  const statements = [
    ...(prompt.quota_day
      ? [
          sql`UPDATE ${promptUsage} SET count = max(count - 1, 0)
            WHERE user_id = ${prompt.user_id} AND day = ${prompt.quota_day} AND ${pending}`,
        ]
      : []),
    sql`UPDATE ${chatrooms} SET updated_at = ${now.getTime()} WHERE id = ${prompt.chatroom_id} AND ${pending}`,
    sql`UPDATE ${messages} SET status = 'cancelled', updated_at = ${now.getTime()}
      WHERE id = ${prompt.id} AND status = 'pending' AND incarnation = ${prompt.incarnation} RETURNING id`,
  ];
  const results = await db.$client.batch(statements.map((statement) => toStatement(db, statement)));
  return (results.at(-1)?.results.length ?? 0) === 1;
}

/**
 * Stores the one reply a prompt may have and settles the prompt. The unique reply_to makes a second
 * delivery's insert a no-op, and every later statement only acts if this call's reply is the one
 * stored, so redeliveries change nothing. A failure also gives the quota unit back.
 */
export async function storeReply(db: Database, reply: ReplyToStore): Promise<boolean> {
  const { replyId, prompt, now } = reply;
  const mine = sql`EXISTS (SELECT 1 FROM ${messages} WHERE ${messages.id} = ${replyId})`;
  const statements = [
    sql`INSERT INTO ${messages} (id, chatroom_id, user_id, role, content, status, reply_to, prompt_tokens, completion_tokens, created_at, updated_at)
      SELECT ${replyId}, ${prompt.chatroom_id}, ${prompt.user_id}, 'assistant', ${reply.content}, ${reply.outcome}, ${prompt.id},
        ${reply.tokens?.prompt ?? null}, ${reply.tokens?.completion ?? null}, ${now.getTime()}, ${now.getTime()}
      WHERE ${stillPending(prompt)}
      ON CONFLICT (reply_to) DO NOTHING`,
    sql`UPDATE ${messages} SET status = ${reply.outcome}, updated_at = ${now.getTime()} WHERE id = ${prompt.id} AND ${mine}`,
    sql`UPDATE ${chatrooms} SET updated_at = ${now.getTime()}, last_message_at = ${now.getTime()} WHERE id = ${prompt.chatroom_id} AND ${mine}`,
    ...(reply.outcome === "failed" && prompt.quota_day
      ? [
          sql`UPDATE ${promptUsage} SET count = max(count - 1, 0)
            WHERE user_id = ${prompt.user_id} AND day = ${prompt.quota_day} AND ${mine}`,
        ]
      : []),
    sql`SELECT ${mine} AS stored`,
  ];
  const results = await db.$client.batch(statements.map((statement) => toStatement(db, statement)));
  return (results.at(-1)?.results[0] as { stored: number } | undefined)?.stored === 1;
}

export type RetriedPrompt =
  | { kind: "not-found" }
  | { kind: "not-retryable" }
  | { kind: "limited"; pro: boolean }
  | { kind: "requeued"; pro: boolean; used: number; content: string; createdAt: Date; incarnation: number };

/**
 * Puts a failed or cancelled prompt back to pending: takes a quota unit again, removes the failure
 * note or partial reply so the next reply can take its place, in one batch.
 */
export async function requeueFailedPrompt(
  db: Database,
  input: { userId: string; chatroomId: string; promptId: string; day: string; now: Date },
): Promise<RetriedPrompt> {
  const { userId, chatroomId, promptId, day, now } = input;
  const isRetryable = sql`EXISTS (SELECT 1 FROM ${messages} WHERE ${messages.id} = ${promptId} AND ${messages.chatroomId} = ${chatroomId} AND ${messages.userId} = ${userId} AND ${messages.role} = 'user' AND ${messages.status} IN ('failed', 'cancelled'))`;
  // A fresh grant value: the prompt's own id may still be the marker from when it was first sent.
  const grant = crypto.randomUUID();
  const granted = unitGranted(userId, day, grant);
  const statements = [
    sql`SELECT status, content, created_at, incarnation, ${proCondition(userId, now)} AS pro FROM ${messages}
      WHERE id = ${promptId} AND chatroom_id = ${chatroomId} AND user_id = ${userId} AND role = 'user'`,
    takeQuotaUnit(userId, day, grant, now, isRetryable),
    sql`DELETE FROM ${messages} WHERE reply_to = ${promptId} AND ${isRetryable} AND ${granted}`,
    sql`UPDATE ${messages} SET status = 'pending', quota_day = ${day}, incarnation = incarnation + 1, updated_at = ${now.getTime()}
      WHERE id = ${promptId} AND status IN ('failed', 'cancelled') AND ${granted}`,
  ];
  const results = await db.$client.batch(statements.map((statement) => toStatement(db, statement)));
  const state = results[0]?.results[0] as
    | { status: string; content: string; created_at: number; incarnation: number; pro: number }
    | undefined;
  if (!state) return { kind: "not-found" };
  if (state.status !== "failed" && state.status !== "cancelled") return { kind: "not-retryable" };
  const pro = state.pro === 1;
  const counted = results[1]?.results[0] as { count: number } | undefined;
  if (!counted) return { kind: "limited", pro };
  return {
    kind: "requeued",
    pro,
    used: counted.count,
    content: state.content,
    createdAt: new Date(state.created_at),
    incarnation: state.incarnation + 1,
  };
}

/** One of the user's prompts (role user) in that chatroom, as stored. */
export async function findOwnedPrompt(db: Database, userId: string, chatroomId: string, promptId: string) {
  const [row] = await db.all<MessageRow>(
    sql`SELECT * FROM ${messages} WHERE id = ${promptId} AND chatroom_id = ${chatroomId} AND user_id = ${userId} AND role = 'user'`,
  );
  return row;
}

export type FeedbackToStore = { rating: (typeof FEEDBACK_RATINGS)[number]; comment: string | null; at: Date };

/**
 * Sets (or with null clears) the feedback on one of the user's replies in that chatroom, in one
 * statement; undefined when there is no such reply (a prompt id, another user's, unknown).
 */
export async function setFeedback(
  db: Database,
  where: { userId: string; chatroomId: string; messageId: string },
  feedback: FeedbackToStore | null,
) {
  const [row] = await db
    .update(messages)
    .set({
      feedbackRating: feedback?.rating ?? null,
      feedbackComment: feedback?.comment ?? null,
      feedbackAt: feedback?.at ?? null,
    })
    .where(
      and(
        eq(messages.id, where.messageId),
        eq(messages.chatroomId, where.chatroomId),
        eq(messages.userId, where.userId),
        eq(messages.role, "assistant"),
      ),
    )
    .returning();
  return row;
}
