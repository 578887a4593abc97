import { z } from "@hono/zod-openapi";
import { FEEDBACK_RATINGS, MESSAGE_STATUSES, type Message } from "../../db/schema";
import { built, docsOnly, successSchema } from "../../lib/openapi";
import { queryInteger } from "../../lib/query";
import { textField } from "../../lib/text";
import { type BranchMessage, CURSOR_PATTERN, type Version, type VersionColumns, versionOf } from "./branch.repo";
import type { MessageRow, PromptWithReplyRow } from "./prompts.repo";

// Response schemas are docs-only (src/lib/openapi.ts): built by /openapi.json and /docs, not at startup.
export const TierSchema = docsOnly(() => z.enum(["basic", "pro"]).openapi("Tier"));

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
const exampleReply = {
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
const exampleUsage = { used: 1, limit: 5, remaining: 4, resetsAt: "2026-08-16T00:00:00.000Z" };
const examplePromptWith = (status: (typeof MESSAGE_STATUSES)[number], reply: typeof exampleReply | null) => ({
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

/** The body of PUT …/message/:messageId/feedback. */
export const FeedbackBodySchema = z
  .object({
    rating: z.enum(FEEDBACK_RATINGS).openapi({ description: "up or down" }),
    comment: textField({ field: "comment", min: 1, max: 1000, multiline: true }).optional().openapi({
      description: "Optional, up to 1000 characters; line breaks allowed; replaces any earlier comment",
      example: "Clear and short",
    }),
  })
  .openapi("FeedbackRequest");

export const FeedbackResponseSchema = docsOnly(() =>
  successSchema({
    reply: built(MessageSchema).openapi({
      description:
        "The reply with its feedback (every body's `message` is its human-readable text, so the reply goes here)",
    }),
  }).openapi("FeedbackResponse"),
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

export const SendMessageBodySchema = z
  .object({
    userMessage: textField({ field: "userMessage", min: 1, max: 8000, multiline: true }).openapi({
      example: "Explain Cloudflare Queues in two sentences.",
      description:
        "NFC-normalised and stored as sent; tab and newlines allowed, no other control characters, something visible",
    }),
  })
  .openapi("SendMessageRequest");

export const PromptAcceptedSchema = docsOnly(() =>
  z
    .object({ success: z.literal(true), message: z.string(), prompt: built(PromptSchema), usage: built(UsageSchema) })
    .openapi("PromptAccepted", {
      example: {
        success: true,
        message: "Prompt accepted; the reply will arrive asynchronously",
        prompt: examplePromptWith("pending", null),
        usage: exampleUsage,
      },
    }),
);

export const PromptResponseSchema = docsOnly(() =>
  z.object({ success: z.literal(true), message: z.string(), prompt: built(PromptSchema) }).openapi("PromptResponse", {
    example: { success: true, message: "Prompt", prompt: examplePromptWith("completed", exampleReply) },
  }),
);

export const MessagesQuerySchema = z.object({
  limit: queryInteger("limit", 1, 100)
    .default(50)
    .openapi({ param: { name: "limit", in: "query" }, description: "1–100; out of range is a 400, not a clamp" }),
  before: z
    .string()
    .regex(CURSOR_PATTERN, "before must be a nextCursor value")
    .optional()
    .openapi({
      param: { name: "before", in: "query" },
      description:
        "nextCursor from the previous page (the id of its oldest message; any message id works): the messages before it on its branch, even if the active branch moved since",
    }),
});

export const WaitQuerySchema = z.object({
  wait: queryInteger("wait", 0, 25)
    .default(0)
    .openapi({
      param: { name: "wait", in: "query" },
      description: "Seconds (0–25) to hold the request until the prompt leaves pending",
    }),
});

export const MessagePageResponseSchema = docsOnly(() =>
  successSchema({
    messages: z.array(built(MessageSchema)).openapi({ description: "Oldest first", example: exampleMessages }),
    nextCursor: z.string().nullable().openapi({
      description:
        "Pass as `before` for the older messages of this branch; null when this page reaches its first message",
      example: exampleMessages[0]?.id,
    }),
  }),
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

/** A prompt as GET …/message/:messageId shows it, from its stored row and the reply just stored (if any). */
export function toSettledPrompt(
  prompt: Pick<MessageRow, "id" | "chatroom_id" | "content" | "created_at" | "parent_id"> & VersionColumns,
  status: PromptDto["status"],
  reply: {
    id: string;
    content: string;
    createdAt: Date;
    tokens?: { prompt: number | null; completion: number | null };
    model?: string | null;
    version: Version;
  } | null,
): PromptDto {
  return toPromptResponse({
    id: prompt.id,
    chatroom_id: prompt.chatroom_id,
    content: prompt.content,
    status,
    created_at: prompt.created_at,
    parent_id: prompt.parent_id,
    version_index: prompt.version_index,
    version_count: prompt.version_count,
    version_previous: prompt.version_previous,
    version_next: prompt.version_next,
    reply_id: reply?.id ?? null,
    reply_version_index: reply?.version.index,
    reply_version_count: reply?.version.count,
    reply_version_previous: reply?.version.previousId,
    reply_version_next: reply?.version.nextId,
    reply_model: reply?.model ?? null,
    reply_content: reply?.content ?? null,
    reply_status: reply && status !== "pending" ? status : null,
    reply_created_at: reply?.createdAt.getTime() ?? null,
    feedback_rating: null,
    feedback_comment: null,
    feedback_at: null,
    prompt_tokens: reply?.tokens?.prompt ?? null,
    completion_tokens: reply?.tokens?.completion ?? null,
  });
}
