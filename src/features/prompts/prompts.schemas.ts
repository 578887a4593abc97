import { z } from "@hono/zod-openapi";
import { FEEDBACK_RATINGS } from "../../db/schema";
import { built, docsOnly, successSchema } from "../../lib/openapi";
import { queryInteger } from "../../lib/query";
import { textField } from "../../lib/text";
import {
  CURSOR_PATTERN,
  exampleMessages,
  examplePromptWith,
  exampleReply,
  exampleUsage,
  MessageSchema,
  type PromptDto,
  PromptSchema,
  toPromptResponse,
  UsageSchema,
  type Version,
  type VersionColumns,
} from "../messages";
import type { MessageRow } from "./prompts.repo";

// Response schemas are docs-only (src/lib/openapi.ts): built by /openapi.json and /docs, not at startup.
export const TierSchema = docsOnly(() => z.enum(["basic", "pro"]).openapi("Tier"));

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
