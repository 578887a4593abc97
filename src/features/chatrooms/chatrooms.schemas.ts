import { z } from "@hono/zod-openapi";
import type { Chatroom } from "../../db/schema";
import { built, docsOnly, successSchema } from "../../lib/openapi";
import { textField } from "../../lib/text";
import { toIso } from "../../lib/time";
import { exampleChatroomId, exampleMessages, MessageSchema } from "../messages";
import { shownName } from "./chatrooms.repo";

export const ChatroomNameSchema = textField({ field: "name", min: 1, max: 100, trim: true }).openapi({
  example: "Trip planning",
  description:
    "Trimmed and NFC-normalised; one line, no control characters, something visible; unique per user, ignoring case",
});

const SystemInstructionSchema = () =>
  textField({ field: "systemInstruction", min: 1, max: 4000, multiline: true }).nullable().openapi({
    description:
      "Sent to Gemini as its system instruction (not as a message) with the chatroom's prompts; up to 4000 characters, line breaks allowed; null clears it",
    example: "You are a concise travel planner. Answer in bullet points.",
  });

const ModelChoiceSchema = () =>
  z.string().max(100).nullable().openapi({
    description:
      "A model id from GET /api/models (another is a 400; a Pro-only one is 403 PRO_REQUIRED for Basic users); null for the default",
    example: "gemini-2.5-flash",
  });

export const CreateChatroomBodySchema = z
  .object({
    name: ChatroomNameSchema.optional().openapi({
      description:
        "Optional: without one the chatroom is named automatically after its first reply (name is null until then). Trimmed and NFC-normalised; one line; unique per user, ignoring case",
    }),
    systemInstruction: SystemInstructionSchema().optional(),
    model: ModelChoiceSchema().optional(),
  })
  .openapi("CreateChatroomRequest");

export const UpdateChatroomBodySchema = z
  .object({
    name: ChatroomNameSchema.optional(),
    systemInstruction: SystemInstructionSchema().optional(),
    model: ModelChoiceSchema().optional(),
  })
  .refine((body) => Object.values(body).some((value) => value !== undefined), {
    message: "Send at least one of name, systemInstruction and model",
  })
  .openapi("UpdateChatroomRequest", { example: { name: "Trip planning", model: "gemini-2.5-flash" } });

const chatroomListFields = () => ({
  id: z.string().openapi({ example: exampleChatroomId }),
  name: z.string().nullable().openapi({
    example: "Trip planning",
    description: "null while a chatroom created without a name waits for its automatic title",
  }),
  createdAt: z.string().openapi({ example: "2026-08-15T09:20:00.000Z" }),
  updatedAt: z.string().openapi({ example: "2026-08-15T09:30:06.000Z" }),
  lastMessageAt: z.string().nullable().openapi({ example: "2026-08-15T09:30:06.000Z" }),
});

/** A chatroom as GET /chatroom lists it. */
export const ChatroomListItemSchema = docsOnly(() => z.object(chatroomListFields()).openapi("ChatroomListItem"));

/** A chatroom with its settings and where its active branch ends. */
export const ChatroomSchema = docsOnly(() =>
  z
    .object({
      ...chatroomListFields(),
      activeLeafId: z.string().nullable().openapi({
        description:
          "The last message of the active branch (the path GET /chatroom/{id} and …/messages show, and where a send appends); null while the chatroom is empty",
        example: exampleMessages[1]?.id,
      }),
      systemInstruction: z.string().nullable().openapi({
        description: "Sent to Gemini as its system instruction with every prompt; null for none",
        example: "You are a concise travel planner. Answer in bullet points.",
      }),
      model: z
        .string()
        .nullable()
        .openapi({ description: "A model id from GET /api/models; null for the default", example: "gemini-2.5-pro" }),
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
export const ChatroomListResponseSchema = docsOnly(() =>
  successSchema({ chatrooms: z.array(built(ChatroomListItemSchema)) }),
);

export const ActiveBranchBodySchema = z
  .object({
    messageId: z.string().openapi({
      example: "0198a9e4-0b6f-7a10-9c21-3d4e5f6a7b8c",
      description:
        "Any message of the chatroom: the active branch will run through it, down to the newest leaf beneath it",
    }),
  })
  .openapi("ActiveBranchRequest");

export const ActiveBranchResponseSchema = docsOnly(() =>
  successSchema({
    chatroom: built(ChatroomSchema),
    messages: z.array(built(MessageSchema)).openapi({
      description: "The last 20 messages of the new active branch, oldest first",
      example: exampleMessages,
    }),
  }),
);

export type ChatroomListItemDto = z.infer<typeof ChatroomListItemSchema>;
export type ChatroomDto = z.infer<typeof ChatroomSchema>;

export function toChatroomListItem(room: Chatroom): ChatroomListItemDto {
  return {
    id: room.id,
    name: shownName(room),
    createdAt: room.createdAt.toISOString(),
    updatedAt: room.updatedAt.toISOString(),
    lastMessageAt: toIso(room.lastMessageAt),
  };
}

export function toChatroomResponse(room: Chatroom): ChatroomDto {
  return {
    ...toChatroomListItem(room),
    activeLeafId: room.activeLeafId,
    systemInstruction: room.systemInstruction,
    model: room.model,
  };
}
