import { z } from "@hono/zod-openapi";
import type { Chatroom } from "../../db/schema";
import { successSchema } from "../../lib/openapi";
import { textField } from "../../lib/text";
import { toIso } from "../../lib/time";
import { exampleChatroomId, exampleMessages, MessageSchema } from "../prompts/prompts.schemas";

export const ChatroomNameSchema = textField({ field: "name", min: 1, max: 100, trim: true }).openapi({
  example: "Trip planning",
  description:
    "Trimmed and NFC-normalised; one line, no control characters, something visible; unique per user, ignoring case",
});

export const ChatroomBodySchema = z.object({ name: ChatroomNameSchema }).openapi("ChatroomRequest");

export const ChatroomSchema = z
  .object({
    id: z.string().openapi({ example: exampleChatroomId }),
    name: z.string().openapi({ example: "Trip planning" }),
    createdAt: z.string().openapi({ example: "2026-08-15T09:20:00.000Z" }),
    updatedAt: z.string().openapi({ example: "2026-08-15T09:30:06.000Z" }),
    lastMessageAt: z.string().nullable().openapi({ example: "2026-08-15T09:30:06.000Z" }),
  })
  .openapi("Chatroom");

export const ChatroomDetailSchema = ChatroomSchema.extend({
  messages: z
    .array(MessageSchema)
    .openapi({ description: "The last 20 messages, oldest first", example: exampleMessages }),
}).openapi("ChatroomDetail");

export const ChatroomIdParamsSchema = z.object({
  id: z.string().openapi({ param: { name: "id", in: "path" }, example: exampleChatroomId }),
});

export const MessageParamsSchema = ChatroomIdParamsSchema.extend({
  messageId: z.string().openapi({ param: { name: "messageId", in: "path" } }),
});

/**
 * A whole number in the query string. Digits only: `wait=`, `wait=null` and `wait=1.5` are a 400 alike
 * (a plain coercion would read the empty value as 0).
 */
const queryInteger = (name: string, min: number, max: number) =>
  z.preprocess(
    (value) => (typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : value),
    z
      .int({ error: `${name} must be a whole number from ${min} to ${max}` })
      .min(min)
      .max(max),
  );

export const MessagesQuerySchema = z.object({
  limit: queryInteger("limit", 1, 100)
    .default(50)
    .openapi({ param: { name: "limit", in: "query" }, description: "1–100; out of range is a 400, not a clamp" }),
  before: z
    .string()
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/, "before must be a nextCursor value")
    .optional()
    .openapi({ param: { name: "before", in: "query" }, description: "nextCursor from the previous page" }),
});

export const WaitQuerySchema = z.object({
  wait: queryInteger("wait", 0, 25)
    .default(0)
    .openapi({
      param: { name: "wait", in: "query" },
      description: "Seconds (0–25) to hold the request until the prompt leaves pending",
    }),
});

export const ChatroomResponseSchema = successSchema({ chatroom: ChatroomSchema });
export const ChatroomDetailResponseSchema = successSchema({ chatroom: ChatroomDetailSchema });
export const ChatroomListResponseSchema = successSchema({ chatrooms: z.array(ChatroomSchema) });
export const MessagePageResponseSchema = successSchema({
  messages: z.array(MessageSchema).openapi({ description: "Oldest first", example: exampleMessages }),
  nextCursor: z.string().nullable().openapi({
    description: "Pass as `before` for older messages; null at the start",
    example: exampleMessages[0]?.id,
  }),
});

export type ChatroomDto = z.infer<typeof ChatroomSchema>;

export function toChatroomResponse(room: Chatroom): ChatroomDto {
  return {
    id: room.id,
    name: room.name,
    createdAt: room.createdAt.toISOString(),
    updatedAt: room.updatedAt.toISOString(),
    lastMessageAt: toIso(room.lastMessageAt),
  };
}
