import { z } from "@hono/zod-openapi";
import { built, docsOnly, successSchema } from "../../lib/openapi";
import { ChatroomSchema } from "../chatrooms";
import { PromptSchema, UsageSchema } from "../messages";

// Docs-only (src/lib/openapi.ts): the events are documented, not validated at runtime.
export const LiveEventSchema = docsOnly(() => {
  const eventId = z
    .string()
    .openapi({ description: "Opaque, increasing within the chatroom; send it back as Last-Event-ID" });

  return z
    .discriminatedUnion("event", [
      z
        .object({
          id: eventId,
          event: z.literal("prompt"),
          data: z.object({
            prompt: built(PromptSchema),
            usage: built(UsageSchema)
              .optional()
              .openapi({ description: "Only on the stream answering the send itself" }),
          }),
        })
        .openapi({
          description:
            "A prompt was accepted in the chatroom (sent, edited, retried or regenerated), from any device; a regenerated prompt comes pending with reply null",
        }),
      z
        .object({
          id: eventId,
          event: z.literal("delta"),
          data: z.object({ promptId: z.string(), text: z.string() }),
        })
        .openapi({
          description: "The next piece of the reply; a prompt's deltas, joined in order, are the text so far",
        }),
      z
        .object({
          id: eventId,
          event: z.literal("retrying"),
          data: z.object({ promptId: z.string(), attempt: z.number().int(), retryInSeconds: z.number().int() }),
        })
        .openapi({ description: "Generation failed in a retryable way; the text so far is dropped and starts again" }),
      z.object({ id: eventId, event: z.literal("reply"), data: z.object({ prompt: built(PromptSchema) }) }).openapi({
        description: "The prompt settled (completed, failed or cancelled), as GET …/message/{messageId} now returns it",
      }),
      z.object({ id: eventId, event: z.literal("reset"), data: z.object({}) }).openapi({
        description: "Cannot replay from the Last-Event-ID given: reload with the REST endpoints, then read on",
      }),
      z.object({ id: eventId, event: z.literal("deleted"), data: z.object({ chatroomId: z.string() }) }).openapi({
        description: "The chatroom was deleted; the stream ends (a WebSocket is closed with 1000 at once)",
      }),
      z
        .object({
          id: eventId,
          event: z.literal("branch"),
          data: z.object({ activeLeafId: z.string().nullable() }),
        })
        .openapi({
          description:
            "The active branch moved (a send, edit, regenerate, a retry that dropped the leaf, or a switch, from any device): it now ends at activeLeafId. " +
            "When a reply completes the prompt the branch ended at, it ends at the reply: the `reply` event says so, with no `branch` of its own. " +
            "Only on the chatroom's event stream, not on a prompt's stream",
        }),
      z
        .object({ id: eventId, event: z.literal("chatroom"), data: z.object({ chatroom: built(ChatroomSchema) }) })
        .openapi({
          description:
            "The chatroom's name or settings changed (a rename, new settings or an automatic title): the chatroom as it now is. Only on the chatroom's event stream",
        }),
      z
        .object({
          id: eventId,
          event: z.literal("revoked"),
          data: z.object({
            reason: z.enum(["logout", "logout-all", "password-changed", "password-reset"]).openapi({
              description: "What revoked the token (or the token the ticket was made with)",
            }),
          }),
        })
        .openapi({
          description:
            "The token or ticket this stream was opened with was revoked; sent within 15 s, then the stream ends (a WebSocket is closed with 1008 at once). Not replayed",
        }),
    ])
    .openapi("LiveEvent", {
      description:
        "One live event. Over SSE: `id:`, `event:` and one line of JSON `data:`; over WebSocket: this object as a text message. " +
        "A `: ping` comment comes at least every 15 s while nothing else does; a WebSocket client may send the text `ping` at any time and gets `pong`.",
    });
});

export const sseResponse = (description: string) => ({
  content: { "text/event-stream": { schema: LiveEventSchema } },
  description,
});

export const StreamTicketResponseSchema = docsOnly(() =>
  successSchema({
    ticket: z.string().openapi({
      description: "Pass as ?ticket= to this chatroom's events and …/stream endpoints",
      example: "eyJhbGciOiJIUzI1NiIsInR5cCI6InN0cmVhbS10aWNrZXQrand0In0.eyJyb29tIjoiMDE5M2ExYzIifQ.c2lnbmF0dXJl",
    }),
    expiresIn: z.literal(300).openapi({ description: "Seconds the ticket works for, any number of times" }),
  }).openapi("StreamTicket"),
);

export const EventsQuerySchema = z.object({
  lastEventId: z
    .string()
    .optional()
    .openapi({
      param: { name: "lastEventId", in: "query" },
      description: "Replay the events after this id (the Last-Event-ID header does the same and wins)",
    }),
  ticket: z
    .string()
    .optional()
    .openapi({
      param: { name: "ticket", in: "query" },
      description: "A stream ticket, instead of the Authorization header",
    }),
});

export const TicketQuerySchema = EventsQuerySchema.pick({ ticket: true });
