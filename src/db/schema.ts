import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

const timestamp = (name: string) => integer(name, { mode: "timestamp_ms" });

export const users = sqliteTable(
  "users",
  {
    id: text("id").primaryKey(),
    // Normalised with a leading "+".
    phoneNumber: text("phone_number").notNull(),
    // Lower-cased, so uniqueness is case-insensitive.
    email: text("email"),
    fullName: text("full_name"),
    passwordHash: text("password_hash").notNull(),
    // Bumped on every password change or reset; tokens carry the version they were issued for,
    // so a token minted before the change is refused even within the same second.
    tokenVersion: integer("token_version").notNull().default(0),
    // Bumped (by triggers on chatrooms, in the same transaction) whenever any of the user's chatrooms is
    // created, changed or deleted, a send and a reply included: the version the cached list is keyed by.
    listVersion: integer("list_version").notNull().default(0),
    verifiedAt: timestamp("verified_at"),
    // When the user last started an export of their data: one a minute.
    lastExportAt: timestamp("last_export_at"),
    // 12 random hex characters (set by a trigger on insert), in front of every word of the user's in the
    // search index (message_terms): a search reads only the user's own postings, and once the user is
    // deleted nothing links what is left in the index's pages to anyone.
    searchKey: text("search_key"),
    createdAt: timestamp("created_at").notNull(),
    updatedAt: timestamp("updated_at").notNull(),
  },
  (t) => [uniqueIndex("users_phone_number_unique").on(t.phoneNumber), uniqueIndex("users_email_unique").on(t.email)],
);

export const OTP_PURPOSES = ["login", "reset"] as const;
export type OtpPurpose = (typeof OTP_PURPOSES)[number];

export const otps = sqliteTable(
  "otps",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    purpose: text("purpose", { enum: OTP_PURPOSES }).notNull(),
    // HMAC-SHA256 of the code, keyed with a server secret: a leaked table does not reveal codes.
    codeHash: text("code_hash").notNull(),
    attempts: integer("attempts").notNull().default(0),
    expiresAt: timestamp("expires_at").notNull(),
    consumedAt: timestamp("consumed_at"),
    createdAt: timestamp("created_at").notNull(),
  },
  (t) => [
    index("otps_user_purpose_created_idx").on(t.userId, t.purpose, t.createdAt),
    index("otps_created_idx").on(t.createdAt),
  ],
);

/**
 * Password and OTP attempts for the guessing throttle. Each is stored before its password or code is checked,
 * so concurrent guesses count, and deleted when it succeeds: the rows that stay are the failures.
 */
export const authAttempts = sqliteTable(
  "auth_attempts",
  {
    id: text("id").primaryKey(),
    // What is guessed at: "phone:<E.164>" (login, verify-otp, reset-password) or "user:<id>" (change-password).
    subject: text("subject").notNull(),
    // The client's address from CF-Connecting-IP (an IPv6 client's /64); null without that header.
    ip: text("ip"),
    at: timestamp("at").notNull(),
  },
  (t) => [
    index("auth_attempts_subject_at_idx").on(t.subject, t.at),
    index("auth_attempts_ip_at_idx").on(t.ip, t.at),
    index("auth_attempts_at_idx").on(t.at),
  ],
);

export type User = typeof users.$inferSelect;

export const chatrooms = sqliteTable(
  "chatrooms",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    // name.toLowerCase() (Unicode-aware, unlike SQLite's lower()): names are unique per user ignoring case.
    nameKey: text("name_key").notNull(),
    createdAt: timestamp("created_at").notNull(),
    // Touched on create, rename and every completed reply: the list is ordered by it.
    updatedAt: timestamp("updated_at").notNull(),
    lastMessageAt: timestamp("last_message_at"),
    // The end of the active branch: the path from the root to this message is what the chatroom shows
    // and where a send appends. Null while the chatroom has no message.
    activeLeafId: text("active_leaf_id"),
    // Sent as Gemini's systemInstruction with every prompt of the chatroom; null for none.
    systemInstruction: text("system_instruction"),
    // A model id from GEMINI_MODELS; null for the default.
    model: text("model"),
  },
  (t) => [
    uniqueIndex("chatrooms_user_name_key_unique").on(t.userId, t.nameKey),
    index("chatrooms_user_updated_idx").on(t.userId, t.updatedAt),
  ],
);

export const MESSAGE_ROLES = ["user", "assistant"] as const;
export const MESSAGE_STATUSES = ["pending", "completed", "failed", "cancelled"] as const;

export const FEEDBACK_RATINGS = ["up", "down"] as const;

export const messages = sqliteTable(
  "messages",
  {
    // UUIDv7: ordering by id is ordering by creation time, which the cursor pagination relies on.
    id: text("id").primaryKey(),
    chatroomId: text("chatroom_id")
      .notNull()
      .references(() => chatrooms.id, { onDelete: "cascade" }),
    userId: text("user_id").notNull(),
    role: text("role", { enum: MESSAGE_ROLES }).notNull(),
    content: text("content").notNull(),
    status: text("status", { enum: MESSAGE_STATUSES }).notNull(),
    // The message this one follows in the chatroom's tree: a reply's prompt; a prompt's reply (or prompt)
    // before it; null for a first prompt. Messages with the same parent and role are versions of one place.
    parentId: text("parent_id"),
    // On assistant replies: the prompt answered (the same as parentId). Unique with incarnation, so a run
    // of a prompt can never get two replies; a regenerated prompt keeps its earlier replies as versions.
    replyTo: text("reply_to"),
    // On assistant replies: the model that wrote it.
    model: text("model"),
    promptTokens: integer("prompt_tokens"),
    completionTokens: integer("completion_tokens"),
    // On assistant replies: the thinking tokens Gemini spent on it (usageMetadata.thoughtsTokenCount).
    thoughtTokens: integer("thought_tokens"),
    // On prompts: the UTC day whose quota unit it used, so a failure can give that unit back.
    quotaDay: text("quota_day"),
    // On prompts: bumped each time the prompt is retried or regenerated, so a settle by an earlier run of it
    // (a late generation or its cancel) can never settle the new run. On replies: the run that wrote it.
    incarnation: integer("incarnation").notNull().default(0),
    // On assistant replies: the owner's rating ("up" or "down"), optional comment, and when they gave it.
    feedbackRating: text("feedback_rating", { enum: FEEDBACK_RATINGS }),
    feedbackComment: text("feedback_comment"),
    feedbackAt: timestamp("feedback_at"),
    createdAt: timestamp("created_at").notNull(),
    updatedAt: timestamp("updated_at").notNull(),
  },
  (t) => [
    index("messages_chatroom_id_idx").on(t.chatroomId, t.id),
    uniqueIndex("messages_reply_run_unique").on(t.replyTo, t.incarnation),
    // A message's versions (its siblings with the same role) and a node's children, roots included.
    index("messages_siblings_idx").on(t.chatroomId, t.parentId, t.role, t.id),
    // A user's messages by time: usage per day, export, account deletion.
    index("messages_user_created_idx").on(t.userId, t.createdAt),
    // The scheduled sweep's way to the few prompts still pending.
    index("messages_pending_idx").on(t.updatedAt).where(sql`status = 'pending'`),
  ],
);

export const promptUsage = sqliteTable(
  "prompt_usage",
  {
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    day: text("day").notNull(),
    count: integer("count").notNull(),
    // The prompt that last took a unit: lets the statement after the count, in the same batch,
    // know whether this request's unit was granted.
    lastMessageId: text("last_message_id"),
  },
  (t) => [primaryKey({ columns: [t.userId, t.day] }), index("prompt_usage_day_idx").on(t.day)],
);

export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    key: text("key").notNull(),
    messageId: text("message_id").notNull(),
    // The chatroom and a hash of the prompt: the same key with another request is refused.
    fingerprint: text("fingerprint").notNull(),
    // The first answer ({status, headers, body}), replayed for repeats.
    response: text("response"),
    createdAt: timestamp("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.key] }), index("idempotency_keys_created_idx").on(t.createdAt)],
);

export const subscriptions = sqliteTable(
  "subscriptions",
  {
    userId: text("user_id")
      .primaryKey()
      .references(() => users.id, { onDelete: "cascade" }),
    stripeCustomerId: text("stripe_customer_id"),
    stripeSubscriptionId: text("stripe_subscription_id"),
    status: text("status"),
    currentPeriodEnd: timestamp("current_period_end"),
    cancelAtPeriodEnd: integer("cancel_at_period_end", { mode: "boolean" }).notNull().default(false),
    // The Stripe event time of the state stored here: an older event never overwrites it.
    stateAt: timestamp("state_at"),
    createdAt: timestamp("created_at").notNull(),
    updatedAt: timestamp("updated_at").notNull(),
  },
  (t) => [
    uniqueIndex("subscriptions_customer_unique").on(t.stripeCustomerId),
    uniqueIndex("subscriptions_subscription_unique").on(t.stripeSubscriptionId),
  ],
);

/** Stripe events already handled: each event id takes effect once, however often it is delivered. */
export const stripeEvents = sqliteTable(
  "stripe_events",
  {
    id: text("id").primaryKey(),
    type: text("type").notNull(),
    // Written in the same batch as the event's effect; the effect statements check it is this delivery's.
    deliveryId: text("delivery_id").notNull(),
    processedAt: timestamp("processed_at").notNull(),
  },
  (t) => [index("stripe_events_processed_idx").on(t.processedAt)],
);

export type Chatroom = typeof chatrooms.$inferSelect;
export type Message = typeof messages.$inferSelect;
export type Subscription = typeof subscriptions.$inferSelect;

/**
 * Which messages the search index holds, under a stable integer key: the rowid of their row in the FTS5
 * table `message_terms` (`terms`: each word after the owner's `users.search_key`; `scope`: the chatroom's
 * token; no stored text). A trigger on `messages` adds the row here (prompts and replies, not failure
 * notes) and deletes both; the statement after the message's insert, in the same batch, adds its words
 * (src/features/search/search.terms.ts; migration 0014).
 */
export const searchDocs = sqliteTable("search_docs", {
  rowid: integer("rowid").primaryKey(),
  messageId: text("message_id").notNull().unique(),
});

/**
 * Read-only links to a snapshot of a chatroom's active branch. The id is 128 random bits (base64url):
 * knowing it is what opens the link. The snapshot is stored as taken, so later messages are never shown;
 * revoking deletes the row, and deleting the chatroom or the account takes it along.
 */
export const shares = sqliteTable(
  "shares",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    chatroomId: text("chatroom_id")
      .notNull()
      .references(() => chatrooms.id, { onDelete: "cascade" }),
    // The chatroom's name when shared (empty while it had none yet).
    chatroomName: text("chatroom_name").notNull(),
    // JSON: [{role, content, createdAt}], oldest first.
    messages: text("messages").notNull(),
    messageCount: integer("message_count").notNull(),
    createdAt: timestamp("created_at").notNull(),
  },
  (t) => [index("shares_chatroom_created_idx").on(t.chatroomId, t.createdAt), index("shares_user_idx").on(t.userId)],
);
