import { z } from "@hono/zod-openapi";
import type { Chatroom } from "../../db/schema";
import { built, docsOnly, successSchema } from "../../lib/openapi";
import { textField } from "../../lib/text";
import { toIso } from "../../lib/time";
import { exampleChatroomId, exampleMessages, MessageSchema } from "../prompts/prompts.schemas";

export const ChatroomNameSchema = textField({ field: "name", min: 1, max: 100, trim: true }).openapi({
  example: "Trip planning",
  description:
    "Trimmed and NFC-normalised; one line, no control characters, something visible; unique per user, ignoring case",
});

export const ChatroomBodySchema = z.object({ name: ChatroomNameSchema }).openapi("ChatroomRequest");

export const ChatroomSchema = docsOnly(() =>
  z
    .object({
      id: z.string().openapi({ example: exampleChatroomId }),
      name: z.string().openapi({ example: "Trip planning" }),
      createdAt: z.string().openapi({ example: "2026-08-15T09:20:00.000Z" }),
      updatedAt: z.string().openapi({ example: "2026-08-15T09:30:06.000Z" }),
      lastMessageAt: z.string().nullable().openapi({ example: "2026-08-15T09:30:06.000Z" }),
    })
    .openapi("Chatroom"),
);

export const ChatroomDetailSchema = docsOnly(() =>
  built(ChatroomSchema)
    .extend({
      messages: z
        .array(built(MessageSchema))
        .openapi({ description: "The last 20 messages, oldest first", example: exampleMessages }),
    })
    .openapi("ChatroomDetail"),
);

export const ChatroomIdParamsSchema = z.object({
  id: z.string().openapi({ param: { name: "id", in: "path" }, example: exampleChatroomId }),
});

export const MessageParamsSchema = ChatroomIdParamsSchema.extend({
  messageId: z.string().openapi({ param: { name: "messageId", in: "path" } }),
});

export const ChatroomResponseSchema = docsOnly(() => successSchema({ chatroom: built(ChatroomSchema) }));
export const ChatroomDetailResponseSchema = docsOnly(() => successSchema({ chatroom: built(ChatroomDetailSchema) }));
export const ChatroomListResponseSchema = docsOnly(() => successSchema({ chatrooms: z.array(built(ChatroomSchema)) }));

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
