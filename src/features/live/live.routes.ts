import { createRoute } from "@hono/zod-openapi";
import { notFound } from "../../lib/errors";
import { isId } from "../../lib/ids";
import { authErrors, bearerAuth, bearerOrTicketAuth, errorResponses, jsonResponse } from "../../lib/openapi";
import { createRouter } from "../../lib/validate";
import type { AppEnv } from "../../types";
import { ChatroomIdParamsSchema, chatroomExists, MessageParamsSchema } from "../chatrooms";
import { forwardWebSocket, HubSubscription } from "./hub";
import { EventsQuerySchema, StreamTicketResponseSchema, sseResponse, TicketQuerySchema } from "./live.schemas";
import { heartbeatMs, liveStreamResponse } from "./live-stream";
import { promptStream, subscriberOf } from "./prompt-stream";
import { issueTicket } from "./tickets";

/** Mounted at /api/chatroom behind requireAuth (src/app.ts), which also admits the streams' tickets. */
export const liveRoutes = createRouter<AppEnv>();

liveRoutes.openapi(
  createRoute({
    method: "post",
    path: "/{id}/stream-ticket",
    operationId: "createStreamTicket",
    tags: ["Live replies"],
    summary: "A short-lived ticket for EventSource, which cannot send headers",
    description:
      "Pass it as ?ticket= to this chatroom's events and …/stream endpoints, any number of times within 300 s. " +
      "It opens nothing else, is no bearer token, and stops working when the user's tokens are revoked.",
    security: bearerAuth,
    request: { params: ChatroomIdParamsSchema },
    responses: {
      200: jsonResponse(StreamTicketResponseSchema, "The ticket"),
      ...errorResponses({ ...authErrors, 404: "NOT_FOUND" }),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await chatroomExists(c.get("db"), c.get("userId"), id))) throw notFound("Chatroom");
    const { ticket } = await issueTicket(c.env, {
      userId: c.get("userId"),
      tokenVersion: c.get("tokenVersion"),
      tokenId: c.get("tokenId"),
      chatroomId: id,
    });
    return c.json({ success: true as const, message: "Stream ticket", ticket, expiresIn: 300 as const }, 200);
  },
);

liveRoutes.openapi(
  createRoute({
    method: "get",
    path: "/{id}/message/{messageId}/stream",
    operationId: "streamPrompt",
    tags: ["Live replies"],
    summary: "One prompt as Server-Sent Events: the text so far, then live until its reply",
    description:
      "`prompt` as stored now; while pending, one `delta` with all the text generated so far (if any), then that prompt's live events; ends after `reply`. " +
      "For a settled prompt `prompt` and `reply` come at once and the stream ends. The stream belongs to the prompt's current run: it never ends a retried prompt with an earlier run's reply. " +
      "Ends with `revoked` when its token or ticket is revoked. Accepts ?ticket= instead of the Authorization header.",
    security: bearerOrTicketAuth,
    request: { params: MessageParamsSchema, query: TicketQuerySchema },
    responses: {
      200: sseResponse("text/event-stream of the prompt"),
      ...errorResponses({ ...authErrors, 404: "NOT_FOUND" }),
    },
  }),
  async (c) => {
    const { id, messageId } = c.req.valid("param");
    return promptStream(c, { chatroomId: id, promptId: messageId }) as never;
  },
);

liveRoutes.openapi(
  createRoute({
    method: "get",
    path: "/{id}/events",
    operationId: "streamChatroomEvents",
    tags: ["Live replies"],
    summary: "Everything happening in the chatroom, live (SSE, or WebSocket with Upgrade)",
    description:
      "Live for as long as the client stays (ended after 30 minutes; reconnect). Reconnecting with Last-Event-ID (or ?lastEventId=) replays every event after that id " +
      "if it is at most 10 minutes and 1000 events old, else sends `reset`. With `Upgrade: websocket` the same events come as text messages {id, event, data}; " +
      "the text `ping` sent on the socket is answered `pong`, and the socket is closed right after `deleted` (1000) or `revoked` (1008). " +
      "Accepts ?ticket= instead of the Authorization header. Authorization holds for the stream's whole life: when its token or ticket is revoked " +
      "(logout of that token, logout-all, password change or reset) the stream gets `revoked` and ends. A reader more than 1 MiB behind " +
      "(live events waiting for it, not counting a replay) is dropped and resumes with Last-Event-ID. Ownership is checked before anything else is touched.",
    security: bearerOrTicketAuth,
    request: { params: ChatroomIdParamsSchema, query: EventsQuerySchema },
    responses: {
      101: { description: "With Upgrade: websocket: the same events as WebSocket text messages {id, event, data}" },
      200: sseResponse("text/event-stream of the chatroom's events"),
      ...errorResponses({ ...authErrors, 404: "NOT_FOUND" }),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    // Checked before the hub is touched: a hub is a Durable Object with storage.
    if (!isId(id) || !(await chatroomExists(c.get("db"), c.get("userId"), id))) throw notFound("Chatroom");
    const after = c.req.header("Last-Event-ID") ?? c.req.valid("query").lastEventId;
    const options = { subscriber: subscriberOf(c), after };
    if (c.req.header("Upgrade")?.toLowerCase() === "websocket")
      return (await forwardWebSocket(c.env, id, options)) as never;
    const subscription = await HubSubscription.open(c.env, id, options);
    return liveStreamResponse({
      request: c.req.raw,
      subscription,
      heartbeatMs: heartbeatMs(c.env),
      initial: [],
    }) as never;
  },
);
