import { type SQL, sql } from "drizzle-orm";
import { type Database, toStatement } from "../../db/client";
import { batch, rowsOf } from "../../db/compiled";
import {
  chatrooms,
  type FEEDBACK_RATINGS,
  idempotencyKeys,
  type MESSAGE_STATUSES,
  messages,
  promptUsage,
} from "../../db/schema";
import { proCondition } from "../billing";
import { toBranchMessage, VERSION_COLUMNS, type Version, type VersionColumns, versionOf } from "../messages";
import { indexMessage } from "../search";
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
  /** Bumped by each retry or regeneration: a settle must name the run it belongs to. */
  incarnation: number;
  parent_id: string | null;
  model: string | null;
  created_at: number;
} & VersionColumns;

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
  /** Where it goes: after the active leaf (a send), or as a new version of an earlier prompt (an edit). */
  editOf?: string;
  idempotency?: { key: string; fingerprint: string; notBefore: Date };
};

export type RecordedPrompt =
  | { kind: "not-found" }
  | { kind: "message-not-found" }
  | { kind: "replay"; messageId: string; fingerprint: string; response: string | null }
  | { kind: "limited"; pro: boolean }
  | { kind: "stored"; pro: boolean; used: number; parentId: string | null; version: Version };

/** The user's prompt `promptId` in the chatroom (SQL, true or false). */
const ownsPrompt = (userId: string, chatroomId: string, promptId: string) =>
  sql`EXISTS (SELECT 1 FROM ${messages} WHERE ${messages.id} = ${promptId} AND ${messages.chatroomId} = ${chatroomId} AND ${messages.userId} = ${userId} AND ${messages.role} = 'user')`;

/** A message's parent id and version, read back after it was written. */
const placeOf = (id: string) =>
  sql`SELECT m.parent_id, ${sql.raw(VERSION_COLUMNS)} FROM ${messages} m WHERE m.id = ${id}`;

type Place = { parent_id: string | null } & VersionColumns;

/**
 * Checks the room (and for an edit the prompt edited), the idempotency key and the quota, and stores
 * the prompt as the chatroom's new active leaf: one batch, so one round trip and one transaction. Each
 * statement is conditional on the ones before it, which is what makes 20 concurrent sends give exactly 5
 * prompts on a Basic day, and two concurrent sends a chain rather than two versions of one place.
 */
export async function recordPrompt(db: Database, prompt: NewPrompt): Promise<RecordedPrompt> {
  const { id, userId, chatroomId, day, now, idempotency, editOf } = prompt;
  const keyClaimed = idempotency
    ? sql` AND EXISTS (SELECT 1 FROM ${idempotencyKeys} WHERE ${idempotencyKeys.userId} = ${userId} AND ${idempotencyKeys.key} = ${idempotency.key} AND ${idempotencyKeys.messageId} = ${id})`
    : sql``;
  const target = editOf ? sql` AND ${ownsPrompt(userId, chatroomId, editOf)}` : sql``;
  const parent = editOf
    ? sql`(SELECT ${messages.parentId} FROM ${messages} WHERE ${messages.id} = ${editOf})`
    : sql`(SELECT ${chatrooms.activeLeafId} FROM ${chatrooms} WHERE ${chatrooms.id} = ${chatroomId})`;
  const keyStatements = idempotency
    ? [
        sql`DELETE FROM ${idempotencyKeys} WHERE user_id = ${userId} AND key = ${idempotency.key} AND created_at < ${idempotency.notBefore.getTime()}`,
        sql`INSERT INTO ${idempotencyKeys} (user_id, key, message_id, fingerprint, created_at)
          SELECT ${userId}, ${idempotency.key}, ${id}, ${idempotency.fingerprint}, ${now.getTime()} WHERE ${ownsRoom(userId, chatroomId)}${target}
          ON CONFLICT DO NOTHING`,
      ]
    : [];
  const statements = [
    sql`SELECT ${ownsRoom(userId, chatroomId)} AS owned, ${proCondition(userId, now)} AS pro${
      editOf ? sql`, ${ownsPrompt(userId, chatroomId, editOf)} AS target` : sql``
    }`,
    ...keyStatements,
    takeQuotaUnit(userId, day, id, now, sql`${ownsRoom(userId, chatroomId)}${target}${keyClaimed}`),
    sql`INSERT INTO ${messages} (id, chatroom_id, user_id, role, content, status, quota_day, parent_id, created_at, updated_at)
      SELECT ${id}, ${chatroomId}, ${userId}, 'user', ${prompt.content}, 'pending', ${day}, ${parent}, ${now.getTime()}, ${now.getTime()}
      WHERE ${unitGranted(userId, day, id)}`,
    sql`UPDATE ${chatrooms} SET last_message_at = ${now.getTime()}, active_leaf_id = ${id}
      WHERE id = ${chatroomId} AND EXISTS (SELECT 1 FROM ${messages} WHERE ${messages.id} = ${id})`,
    placeOf(id),
    ...indexMessage({ id, userId, chatroomId, content: prompt.content }),
    ...(idempotency
      ? [
          sql`SELECT message_id, fingerprint, response FROM ${idempotencyKeys} WHERE user_id = ${userId} AND key = ${idempotency.key}`,
        ]
      : []),
  ];
  const results = await db.$client.batch(statements.map((statement) => toStatement(db, statement)));
  const flags = results[0]?.results[0] as { owned: number; pro: number; target?: number } | undefined;
  if (!flags?.owned) return { kind: "not-found" };
  if (editOf && !flags.target) return { kind: "message-not-found" };
  const pro = flags.pro === 1;
  if (idempotency) {
    const claim = results.at(-1)?.results[0] as { message_id: string; fingerprint: string; response: string | null };
    if (claim && claim.message_id !== id) {
      return { kind: "replay", messageId: claim.message_id, fingerprint: claim.fingerprint, response: claim.response };
    }
  }
  const counted = results[1 + keyStatements.length]?.results[0] as { count: number } | undefined;
  if (!counted) return { kind: "limited", pro };
  const place = results[4 + keyStatements.length]?.results[0] as Place | undefined;
  return {
    kind: "stored",
    pro,
    used: counted.count,
    parentId: place?.parent_id ?? null,
    version: versionOf(place ?? {}),
  };
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

/**
 * The prompt and its own branch before it (newest first, at most `limit`), in one round trip: its
 * ancestors, never a message of another branch, however new. Failed prompts and the error notes answering
 * them are not part of the conversation; a cancelled prompt is, with the partial reply it kept (one
 * cancelled before any text is left out). A prompt followed on the branch by its reply goes with that reply.
 */
export async function loadPromptContext(db: Database, promptId: string, limit: number) {
  const [prompt, history] = await db.$client.batch([
    toStatement(
      db,
      sql`SELECT m.*, ${sql.raw(VERSION_COLUMNS)}, c.name AS room_name, c.system_instruction AS room_system_instruction, c.model AS room_model,
          ${proCondition(sql`m.user_id`, new Date())} AS user_pro
        FROM ${messages} m JOIN ${chatrooms} c ON c.id = m.chatroom_id WHERE m.id = ${promptId} AND m.role = 'user'`,
    ),
    toStatement(
      db,
      sql`WITH RECURSIVE up(id, parent_id, n, child_id) AS (
          SELECT id, parent_id, 0, NULL FROM ${messages} WHERE id = ${promptId}
          UNION ALL
          SELECT m.id, m.parent_id, up.n + 1, up.id FROM ${messages} m JOIN up ON m.id = up.parent_id WHERE up.n < ${limit * 3}
        )
        SELECT m.* FROM up JOIN ${messages} m ON m.id = up.id LEFT JOIN ${messages} c ON c.id = up.child_id
        WHERE m.id = ${promptId}
          OR (m.role = 'assistant' AND m.status IN ('completed', 'cancelled'))
          OR (m.role = 'user' AND c.role = 'assistant' AND c.status IN ('completed', 'cancelled'))
          OR (m.role = 'user' AND c.role = 'user' AND (m.status = 'completed'
            OR (m.status = 'cancelled' AND EXISTS (SELECT 1 FROM ${messages} r
              WHERE r.chatroom_id = m.chatroom_id AND r.parent_id = m.id AND r.role = 'assistant' AND r.incarnation = m.incarnation))))
        ORDER BY up.n LIMIT ${limit}`,
    ),
  ]);
  return {
    prompt: prompt?.results[0] as PromptInContext | undefined,
    history: (history?.results ?? []) as MessageRow[],
  };
}

/** A prompt as the queue consumer reads it: with its chatroom's settings and whether its user is Pro now. */
export type PromptInContext = MessageRow & {
  /** Empty while the chatroom waits for its automatic title. */
  room_name: string;
  room_system_instruction: string | null;
  room_model: string | null;
  user_pro: number;
};

export type ReplyToStore = {
  replyId: string;
  prompt: Pick<MessageRow, "id" | "chatroom_id" | "user_id" | "quota_day" | "incarnation">;
  content: string;
  outcome: "completed" | "failed" | "cancelled";
  tokens?: { prompt: number | null; completion: number | null; thoughts?: number | null };
  /** The model that wrote it (none for a failure note). */
  model?: string;
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
 * Stores the one reply a run of a prompt may have and settles the prompt. The unique (reply_to,
 * incarnation) makes a second delivery's insert a no-op, and every later statement only acts if this
 * call's reply is the one stored, so redeliveries change nothing. The reply becomes the active leaf when
 * its prompt was. A failure also gives the quota unit back. Returns the stored reply's version, or
 * undefined when this call stored nothing.
 */
export async function storeReply(db: Database, reply: ReplyToStore): Promise<Version | undefined> {
  const { replyId, prompt, now } = reply;
  const mine = sql`EXISTS (SELECT 1 FROM ${messages} WHERE ${messages.id} = ${replyId})`;
  const statements = [
    sql`INSERT INTO ${messages} (id, chatroom_id, user_id, role, content, status, reply_to, parent_id, incarnation, model, prompt_tokens, completion_tokens, thought_tokens, created_at, updated_at)
      SELECT ${replyId}, ${prompt.chatroom_id}, ${prompt.user_id}, 'assistant', ${reply.content}, ${reply.outcome}, ${prompt.id}, ${prompt.id},
        ${prompt.incarnation}, ${reply.model ?? null}, ${reply.tokens?.prompt ?? null}, ${reply.tokens?.completion ?? null},
        ${reply.tokens?.thoughts ?? null}, ${now.getTime()}, ${now.getTime()}
      WHERE ${stillPending(prompt)}
      ON CONFLICT (reply_to, incarnation) DO NOTHING`,
    ...indexMessage({ id: replyId, userId: prompt.user_id, chatroomId: prompt.chatroom_id, content: reply.content }),
    sql`UPDATE ${messages} SET status = ${reply.outcome}, updated_at = ${now.getTime()} WHERE id = ${prompt.id} AND ${mine}`,
    sql`UPDATE ${chatrooms} SET updated_at = ${now.getTime()}, last_message_at = ${now.getTime()},
        active_leaf_id = CASE WHEN active_leaf_id = ${prompt.id} THEN ${replyId} ELSE active_leaf_id END
      WHERE id = ${prompt.chatroom_id} AND ${mine}`,
    ...(reply.outcome === "failed" && prompt.quota_day
      ? [
          sql`UPDATE ${promptUsage} SET count = max(count - 1, 0)
            WHERE user_id = ${prompt.user_id} AND day = ${prompt.quota_day} AND ${mine}`,
        ]
      : []),
    sql`SELECT ${sql.raw(VERSION_COLUMNS)} FROM ${messages} m WHERE m.id = ${replyId}`,
  ];
  const results = await db.$client.batch(statements.map((statement) => toStatement(db, statement)));
  const row = results.at(-1)?.results[0] as VersionColumns | undefined;
  return row && versionOf(row);
}

export type RetriedPrompt =
  | { kind: "not-found" }
  | { kind: "replay"; messageId: string; fingerprint: string; response: string | null }
  | { kind: "not-retryable"; status: MessageStatus }
  | { kind: "limited"; pro: boolean; grant: string }
  | {
      kind: "requeued";
      pro: boolean;
      used: number;
      prompt: Pick<MessageRow, "id" | "content" | "parent_id"> & VersionColumns & { created_at: number };
      incarnation: number;
      /** Whether the active branch now ends at the prompt (a regeneration, or a retry that dropped the leaf). */
      leafMoved: boolean;
      /** This request's mark on its Idempotency-Key. */
      grant: string;
    };

/**
 * Puts a prompt back to pending for a new run: takes a quota unit again, in one batch. A retry (of a
 * failed or cancelled prompt) drops that run's failure note or partial reply so the next reply takes its
 * place; what was sent after it then follows the prompt itself, as if sent while it was pending. A
 * regeneration (of a completed prompt) keeps every reply as a version and ends the active branch at the
 * prompt until its new reply arrives.
 */
export async function requeuePrompt(
  db: Database,
  input: {
    userId: string;
    chatroomId: string;
    promptId: string;
    day: string;
    now: Date;
    mode: "retry" | "regenerate";
    idempotency?: NewPrompt["idempotency"];
  },
): Promise<RetriedPrompt> {
  const { userId, chatroomId, promptId, day, now, mode, idempotency } = input;
  const from = mode === "retry" ? sql`('failed', 'cancelled')` : sql`('completed')`;
  const isRequeueable = sql`EXISTS (SELECT 1 FROM ${messages} WHERE ${messages.id} = ${promptId} AND ${messages.chatroomId} = ${chatroomId} AND ${messages.userId} = ${userId} AND ${messages.role} = 'user' AND ${messages.status} IN ${from})`;
  // A fresh grant value: the prompt's own id may still be the marker from when it was first sent. It
  // also marks this request's claim of an Idempotency-Key.
  const grant = crypto.randomUUID();
  const granted = unitGranted(userId, day, grant);
  const keyStatements = idempotency
    ? [
        sql`DELETE FROM ${idempotencyKeys} WHERE user_id = ${userId} AND key = ${idempotency.key} AND created_at < ${idempotency.notBefore.getTime()}`,
        sql`INSERT INTO ${idempotencyKeys} (user_id, key, message_id, fingerprint, created_at)
          SELECT ${userId}, ${idempotency.key}, ${grant}, ${idempotency.fingerprint}, ${now.getTime()} WHERE ${isRequeueable}
          ON CONFLICT DO NOTHING`,
      ]
    : [];
  const keyClaimed = idempotency
    ? sql` AND EXISTS (SELECT 1 FROM ${idempotencyKeys} WHERE ${idempotencyKeys.userId} = ${userId} AND ${idempotencyKeys.key} = ${idempotency.key} AND ${idempotencyKeys.messageId} = ${grant})`
    : sql``;
  const runReply = sql`(SELECT r.id FROM ${messages} r JOIN ${messages} p ON p.id = r.reply_to
    WHERE r.reply_to = ${promptId} AND r.incarnation = p.incarnation)`;
  const statements = [
    sql`SELECT m.status, m.content, m.created_at, m.incarnation, m.parent_id, ${sql.raw(VERSION_COLUMNS)}, ${proCondition(userId, now)} AS pro
      FROM ${messages} m WHERE m.id = ${promptId} AND m.chatroom_id = ${chatroomId} AND m.user_id = ${userId} AND m.role = 'user'`,
    ...keyStatements,
    takeQuotaUnit(userId, day, grant, now, sql`${isRequeueable}${keyClaimed}`),
    ...(mode === "retry"
      ? [
          sql`UPDATE ${chatrooms} SET active_leaf_id = ${promptId} WHERE id = ${chatroomId} AND active_leaf_id = ${runReply} AND ${granted}`,
          sql`UPDATE ${messages} SET parent_id = ${promptId} WHERE chatroom_id = ${chatroomId} AND parent_id = ${runReply} AND ${granted}`,
          sql`DELETE FROM ${messages} WHERE id = ${runReply} AND ${isRequeueable} AND ${granted}`,
        ]
      : [sql`UPDATE ${chatrooms} SET active_leaf_id = ${promptId} WHERE id = ${chatroomId} AND ${granted}`]),
    sql`UPDATE ${messages} SET status = 'pending', quota_day = ${day}, incarnation = incarnation + 1, updated_at = ${now.getTime()}
      WHERE id = ${promptId} AND status IN ${from} AND ${granted}`,
    ...(idempotency
      ? [
          sql`SELECT message_id, fingerprint, response FROM ${idempotencyKeys} WHERE user_id = ${userId} AND key = ${idempotency.key}`,
        ]
      : []),
  ];
  const results = await db.$client.batch(statements.map((statement) => toStatement(db, statement)));
  if (idempotency) {
    const claim = results.at(-1)?.results[0] as { message_id: string; fingerprint: string; response: string | null };
    if (claim && claim.message_id !== grant) {
      return { kind: "replay", messageId: claim.message_id, fingerprint: claim.fingerprint, response: claim.response };
    }
  }
  const state = results[0]?.results[0] as
    | (Pick<MessageRow, "status" | "content" | "created_at" | "incarnation" | "parent_id"> &
        VersionColumns & {
          pro: number;
        })
    | undefined;
  if (!state) return { kind: "not-found" };
  if (!(mode === "retry" ? ["failed", "cancelled"] : ["completed"]).includes(state.status)) {
    return { kind: "not-retryable", status: state.status };
  }
  const pro = state.pro === 1;
  const counted = results[1 + keyStatements.length]?.results[0] as { count: number } | undefined;
  if (!counted) return { kind: "limited", pro, grant };
  return {
    kind: "requeued",
    pro,
    used: counted.count,
    prompt: { id: promptId, ...state },
    incarnation: state.incarnation + 1,
    leafMoved: (results[2 + keyStatements.length]?.meta.changes ?? 0) > 0,
    grant,
  };
}

/** One of the user's prompts (role user) in that chatroom, as stored. */
export async function findOwnedPrompt(db: Database, userId: string, chatroomId: string, promptId: string) {
  const [row] = await db.all<MessageRow>(
    sql`SELECT m.*, ${sql.raw(VERSION_COLUMNS)} FROM ${messages} m
      WHERE m.id = ${promptId} AND m.chatroom_id = ${chatroomId} AND m.user_id = ${userId} AND m.role = 'user'`,
  );
  return row;
}

export type FeedbackToStore = { rating: (typeof FEEDBACK_RATINGS)[number]; comment: string | null; at: Date };

/**
 * Sets (or with null clears) the feedback on one of the user's replies in that chatroom, and reads it
 * back with its version: one round trip. Undefined when there is no such reply (a prompt id, another
 * user's, unknown).
 */
export async function setFeedback(
  db: Database,
  where: { userId: string; chatroomId: string; messageId: string },
  feedback: FeedbackToStore | null,
) {
  const { userId, chatroomId, messageId } = where;
  const [, read] = await batch(db, [
    toStatement(
      db,
      sql`UPDATE ${messages} SET feedback_rating = ${feedback?.rating ?? null}, feedback_comment = ${feedback?.comment ?? null},
          feedback_at = ${feedback?.at.getTime() ?? null}
        WHERE id = ${messageId} AND chatroom_id = ${chatroomId} AND user_id = ${userId} AND role = 'assistant'`,
    ),
    toStatement(
      db,
      sql`SELECT m.*, ${sql.raw(VERSION_COLUMNS)} FROM ${messages} m
        WHERE m.id = ${messageId} AND m.chatroom_id = ${chatroomId} AND m.user_id = ${userId} AND m.role = 'assistant'`,
    ),
  ]);
  return rowsOf(read, toBranchMessage)[0];
}
