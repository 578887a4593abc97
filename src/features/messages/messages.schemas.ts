import { z } from "@hono/zod-openapi";
import { FEEDBACK_RATINGS, MESSAGE_STATUSES, type Message } from "../../db/schema";
import { built, docsOnly } from "../../lib/openapi";
import { type BranchMessage, versionOf } from "./branch.repo";
import type { PromptWithReplyRow } from "./messages.repo";

// Messages and prompts as every feature shows them (chatrooms, prompts, live, shares, users' export), and
// the day's usage a prompt is answered with. Response schemas are docs-only (src/lib/openapi.ts): built by
// /openapi.json and /docs, not at startup.

/** The OpenAPI examples' exchange: a prompt and Gemini's completed reply, in one chatroom. */
export const exampleChatroomId = "0193a1c2-7d6e-7f00-8a1b-2c3d4e5f6a7b";
const examplePrompt = {
  id: "0198a9e4-0b6f-7a10-9c21-3d4e5f6a7b8c",
  role: "user",
  content: "Explain Cloudflare Queues in two sentences.",
  status: "completed",
  createdAt: "2026-08-15T09:30:00.000Z",
  parentId: null,
  version: { index: 1, count: 1, previousId: null, nextId: null },
} as const;
export const exampleReply = {
  id: "0198a9e4-2a1d-7e44-8b55-6c7d8e9f0a1b",
  role: "assistant",
  content:
    "Cloudflare Queues lets one Worker hand messages to another for processing later, with retries and batching. " +
    "Producers send, and a consumer Worker receives them in batches, acknowledging or retrying each.",
  status: "completed",
  createdAt: "2026-08-15T09:30:04.000Z",
  parentId: examplePrompt.id,
  version: { index: 2, count: 2, previousId: "0198a9e4-1c3b-7c20-9d32-4e5f6a7b8c9d", nextId: null },
  replyTo: examplePrompt.id,
  tokens: { prompt: 11, completion: 46 },
  model: "gemini-2.5-flash",
  feedback: null,
} as const;
/** A chatroom's messages as the API lists them (oldest first), for examples. */
export const exampleMessages = [examplePrompt, exampleReply];
export const exampleUsage = { used: 1, limit: 5, remaining: 4, resetsAt: "2026-08-16T00:00:00.000Z" };
export const examplePromptWith = (status: (typeof MESSAGE_STATUSES)[number], reply: typeof exampleReply | null) => ({
  id: examplePrompt.id,
  chatroomId: exampleChatroomId,
  role: "user",
  content: examplePrompt.content,
  status,
  createdAt: examplePrompt.createdAt,
  parentId: null,
  version: examplePrompt.version,
  reply,
});

export const UsageSchema = docsOnly(() =>
  z
    .object({
      used: z.number().int().openapi({ description: "Prompts counted today (UTC)" }),
      limit: z.number().int().nullable().openapi({ description: "Daily prompt limit; null for Pro (unlimited)" }),
      remaining: z.number().int().nullable().openapi({ description: "null for Pro (unlimited)" }),
      resetsAt: z.string().openapi({ description: "Next 00:00 UTC, when the count starts again" }),
    })
    .openapi("Usage", { example: exampleUsage }),
);

export const VersionSchema = docsOnly(() =>
  z
    .object({
      index: z.number().int().openapi({ description: "1-based, oldest first" }),
      count: z.number().int().openapi({ description: "How many versions this place in the conversation has" }),
      previousId: z.string().nullable().openapi({
        description: "The version before this one (null for the first): PUT …/active-branch with it shows it",
      }),
      nextId: z.string().nullable().openapi({ description: "The version after this one (null for the last)" }),
    })
    .openapi("Version", {
      description:
        "Messages with the same parent and role are versions of one place: edits of a prompt, regenerated replies",
    }),
);

const parentIdField = () =>
  z.string().nullable().openapi({
    description:
      "The message this one follows in the chatroom's tree: a reply's prompt; the reply (or the still-pending prompt) a prompt was sent after; null for a first prompt",
  });

export const MessageSchema = docsOnly(() =>
  z
    .object({
      id: z.string(),
      role: z.enum(["user", "assistant"]),
      content: z.string(),
      status: z.enum(MESSAGE_STATUSES).openapi({
        description: "cancelled: stopped by the user; an assistant reply then holds the text written until then",
      }),
      createdAt: z.string(),
      parentId: parentIdField(),
      version: built(VersionSchema),
      replyTo: z
        .string()
        .optional()
        .openapi({ description: "On assistant replies: the prompt answered (the same as parentId)" }),
      tokens: z
        .object({ prompt: z.number().int().nullable(), completion: z.number().int().nullable() })
        .optional()
        .openapi({ description: "On assistant replies from Gemini: usageMetadata token counts" }),
      model: z
        .string()
        .optional()
        .openapi({ description: "On assistant replies written by Gemini: the model that wrote it" }),
      feedback: z
        .union([built(FeedbackSchema), z.null()])
        .optional()
        .openapi({ description: "On assistant replies: the owner's rating, or null when none was given" }),
    })
    .openapi("Message", { example: exampleReply }),
);

export const FeedbackSchema = docsOnly(() =>
  z
    .object({
      rating: z.enum(FEEDBACK_RATINGS),
      comment: z.string().nullable(),
      updatedAt: z.string(),
    })
    .openapi("Feedback", {
      example: { rating: "up", comment: "Clear and short", updatedAt: "2026-08-15T09:31:00.000Z" },
    }),
);

export const PromptSchema = docsOnly(() =>
  z
    .object({
      id: z.string(),
      chatroomId: z.string(),
      role: z.literal("user"),
      content: z.string(),
      status: z.enum(MESSAGE_STATUSES),
      createdAt: z.string(),
      parentId: parentIdField(),
      version: built(VersionSchema),
      // A union, not .nullable(): the generator turns a nullable $ref into allOf [Message, null], which nothing matches.
      reply: z.union([built(MessageSchema), z.null()]).openapi({
        description:
          "The assistant's reply once the prompt is answered: the one on the active branch, or the newest when the prompt is not on it; " +
          "null while pending (a regenerated prompt too, until its new reply arrives), and for a prompt cancelled before any text",
      }),
    })
    .openapi("Prompt", { example: examplePromptWith("completed", exampleReply) }),
);

export type MessageDto = z.infer<typeof MessageSchema>;
export type PromptDto = z.infer<typeof PromptSchema>;
export type UsageDto = z.infer<typeof UsageSchema>;

export function toMessageResponse(message: BranchMessage): MessageDto {
  return {
    id: message.id,
    role: message.role,
    content: message.content,
    status: message.status,
    createdAt: message.createdAt.toISOString(),
    parentId: message.parentId,
    version: message.version,
    ...(message.replyTo ? { replyTo: message.replyTo } : {}),
    ...(message.role === "assistant" && message.status === "completed"
      ? { tokens: { prompt: message.promptTokens, completion: message.completionTokens } }
      : {}),
    ...(message.model ? { model: message.model } : {}),
    ...(message.role === "assistant" ? { feedback: toFeedback(message) } : {}),
  };
}

export function toFeedback(message: Pick<Message, "feedbackRating" | "feedbackComment" | "feedbackAt">) {
  if (!message.feedbackRating || !message.feedbackAt) return null;
  return {
    rating: message.feedbackRating,
    comment: message.feedbackComment,
    updatedAt: message.feedbackAt.toISOString(),
  };
}

export function toPromptResponse(row: Omit<PromptWithReplyRow, "incarnation">): PromptDto {
  return {
    id: row.id,
    chatroomId: row.chatroom_id,
    role: "user",
    content: row.content,
    status: row.status,
    createdAt: new Date(row.created_at).toISOString(),
    parentId: row.parent_id,
    version: versionOf(row),
    reply:
      row.reply_id && row.reply_status && row.reply_content !== null && row.reply_created_at !== null
        ? {
            id: row.reply_id,
            role: "assistant",
            content: row.reply_content,
            status: row.reply_status,
            createdAt: new Date(row.reply_created_at).toISOString(),
            parentId: row.id,
            version: versionOf(row, "reply_"),
            replyTo: row.id,
            ...(row.reply_status === "completed"
              ? { tokens: { prompt: row.prompt_tokens, completion: row.completion_tokens } }
              : {}),
            ...(row.reply_model ? { model: row.reply_model } : {}),
            feedback: toFeedback({
              feedbackRating: row.feedback_rating,
              feedbackComment: row.feedback_comment,
              feedbackAt: row.feedback_at === null ? null : new Date(row.feedback_at),
            }),
          }
        : null,
  };
}
