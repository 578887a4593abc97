import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createDb } from "../../db/client";
import { AppError, notFound } from "../../lib/errors";
import { authErrors, bearerAuth, bodyErrors, errorResponses, jsonBody, jsonResponse } from "../../lib/openapi";
import { createRouter } from "../../lib/validate";
import type { AppEnv } from "../../types";
import { ChatroomIdParamsSchema, MessageParamsSchema } from "../chatrooms";
import { freezeForCancel, promptStream, sseResponse, subscriberOf, waitUntilSettled } from "../live";
import { findBranchPage, findPromptWithReply, toMessageResponse, toPromptResponse } from "../messages";
import { settleCancelled } from "./prompts.queue";
import { type FeedbackToStore, findOwnedPrompt, setFeedback } from "./prompts.repo";
import {
  FeedbackBodySchema,
  FeedbackResponseSchema,
  MessagePageResponseSchema,
  MessagesQuerySchema,
  PromptAcceptedSchema,
  PromptResponseSchema,
  SendMessageBodySchema,
  WaitQuerySchema,
} from "./prompts.schemas";
import { type PromptAnswer, requeue, sendPrompt } from "./send-prompt";

const promptErrors = {
  ...bodyErrors,
  ...authErrors,
  404: "NOT_FOUND: no such chatroom (or prompt) for this user",
  429: "DAILY_LIMIT_REACHED: 5 prompts per UTC day on Basic; Retry-After is the seconds until 00:00 UTC, and error.usage says the same as GET /user/me's usage",
  503: "QUEUE_UNAVAILABLE: the prompt could not be queued; it is stored as failed and can be retried",
} as const;

const notPending = () => new AppError(409, "NOT_PENDING", "Only a pending prompt can be cancelled");

const rateLimitHeaders = z.object({
  "RateLimit-Limit": z.string().optional().openapi({ description: "5 for Basic; absent for Pro" }),
  "RateLimit-Remaining": z.string().optional(),
  "RateLimit-Reset": z.string().optional().openapi({ description: "Seconds until 00:00 UTC" }),
});

const idempotencyKeyHeader = () =>
  z.object({
    "idempotency-key": z
      .string()
      .min(1)
      .max(255)
      .regex(/^[\x21-\x7e]+$/, "Idempotency-Key must be 1–255 visible ASCII characters")
      .optional()
      .openapi({ description: "Idempotency-Key: repeats within 24 h return the first answer" }),
  });

const queuedResponses = (description: string) => ({
  200: {
    ...sseResponse(`With Accept: text/event-stream: ${description}`),
    headers: rateLimitHeaders,
  },
  202: { ...jsonResponse(PromptAcceptedSchema, "Accepted and queued"), headers: rateLimitHeaders },
});

/**
 * A chatroom's messages: its history, sending a prompt, one prompt with its reply, retrying, feedback,
 * cancelling one. Mounted at /api/chatroom behind requireAuth (src/app.ts), before the live routes.
 */
export const promptRoutes = createRouter<AppEnv>();

promptRoutes.openapi(
  createRoute({
    method: "get",
    path: "/{id}/messages",
    operationId: "listMessages",
    tags: ["Messages"],
    summary: "Page through a chatroom's active branch, newest page first, each page oldest first",
    description:
      "The active branch is the path from the first prompt to the chatroom's activeLeafId, each message after the one it follows; a prompt followed on it by another prompt " +
      "(sent while it was still pending) has its newest reply listed right after it, so every message shows and each prompt is followed by its own answer. " +
      "Each page walks up from where the last one stopped: one D1 round trip, as fast 5,000 messages back as at the end.",
    security: bearerAuth,
    request: { params: ChatroomIdParamsSchema, query: MessagesQuerySchema },
    responses: {
      200: jsonResponse(MessagePageResponseSchema, "A page of messages"),
      ...errorResponses({
        ...authErrors,
        400: "VALIDATION_FAILED: limit out of 1–100 or a malformed cursor",
        404: "NOT_FOUND",
      }),
    },
  }),
  async (c) => {
    const { limit, before } = c.req.valid("query");
    const page = await findBranchPage(c.get("db"), c.get("userId"), c.req.valid("param").id, limit, before);
    if (!page) throw notFound("Chatroom");
    if (page === "stale-cursor") {
      throw new AppError(400, "VALIDATION_FAILED", "Request validation failed", [
        { path: "before", message: "This cursor's message is no longer in the chatroom: load the branch again" },
      ]);
    }
    return c.json(
      {
        success: true as const,
        message: "Messages",
        messages: page.messages.map(toMessageResponse),
        nextCursor: page.nextCursor,
      },
      200,
    );
  },
);

promptRoutes.openapi(
  createRoute({
    method: "post",
    path: "/{id}/message",
    operationId: "sendPrompt",
    tags: ["Messages"],
    summary: "Send a prompt; Gemini answers asynchronously, or live with Accept: text/event-stream",
    description:
      "Stores the prompt as pending and queues it; poll GET …/message/{messageId}?wait=N for the reply. " +
      "With Accept: text/event-stream the answer is 200 text/event-stream instead: `prompt` (with `usage`), the `delta` events as the reply is written, then `reply`, and the stream ends; " +
      "everything that fails before the prompt is accepted is the usual JSON error. " +
      "A repeated Idempotency-Key (per user, 24 h) returns the first answer again (with Idempotent-Replayed: true) " +
      "and neither stores, queues nor counts twice; the same key with a different chatroom or text is a 409 IDEMPOTENCY_KEY_REUSED, " +
      "and a repeat while the first is still in flight a 409 IDEMPOTENCY_KEY_IN_USE. A request answered 429 or 503 does not keep its key.",
    security: bearerAuth,
    request: {
      params: ChatroomIdParamsSchema,
      headers: idempotencyKeyHeader(),
      body: jsonBody(SendMessageBodySchema),
    },
    responses: {
      ...queuedResponses("the prompt, its reply as it is written, then the reply"),
      ...errorResponses({
        ...promptErrors,
        409: "IDEMPOTENCY_KEY_REUSED or IDEMPOTENCY_KEY_IN_USE",
      }),
    },
  }),
  async (c) => {
    const answer = await sendPrompt(c.env, c.get("db"), {
      userId: c.get("userId"),
      chatroomId: c.req.valid("param").id,
      content: c.req.valid("json").userMessage,
      idempotencyKey: c.req.valid("header")["idempotency-key"],
    });
    return (await acceptedAnswer(c, answer)) as never;
  },
);

/** 202 with the accepted prompt, or with Accept: text/event-stream its stream (prompt, deltas, reply). */
async function acceptedAnswer(c: Context<AppEnv>, answer: PromptAnswer & { replayed?: true }) {
  const headers: Record<string, string> = {
    ...answer.headers,
    ...(answer.replayed ? { "Idempotent-Replayed": "true" } : {}),
  };
  if (wantsEventStream(c.req.header("Accept"))) {
    const { prompt, usage } = answer.body;
    return promptStream(c, {
      chatroomId: prompt.chatroomId,
      promptId: prompt.id,
      // A repeat streams the prompt's current state, read from D1; a new prompt is known to be pending.
      known: answer.replayed ? undefined : prompt,
      usage,
      headers,
    });
  }
  for (const [name, value] of Object.entries(headers)) c.header(name, value);
  return c.json(answer.body, 202);
}

promptRoutes.openapi(
  createRoute({
    method: "post",
    path: "/{id}/message/{messageId}/edit",
    operationId: "editPrompt",
    tags: ["Messages"],
    summary: "Edit a prompt: a new version of it, answered like a send",
    description:
      "Stores a new prompt with the same parent as messageId (a new version of that place; the earlier version and everything after it stay, one switch away), " +
      "makes it the active leaf and queues it exactly like a send: one quota unit, Idempotency-Key, 429, and with Accept: text/event-stream its stream. " +
      "Any of the user's prompts can be edited, whatever its status. A reply id is 404: replies are regenerated, not edited.",
    security: bearerAuth,
    request: { params: MessageParamsSchema, headers: idempotencyKeyHeader(), body: jsonBody(SendMessageBodySchema) },
    responses: {
      ...queuedResponses("the new prompt, its reply as it is written, then the reply"),
      ...errorResponses({
        ...promptErrors,
        404: "NOT_FOUND: no such chatroom, or no such prompt in it (a reply id too)",
        409: "IDEMPOTENCY_KEY_REUSED or IDEMPOTENCY_KEY_IN_USE",
      }),
    },
  }),
  async (c) => {
    const { id, messageId } = c.req.valid("param");
    const answer = await sendPrompt(c.env, c.get("db"), {
      userId: c.get("userId"),
      chatroomId: id,
      content: c.req.valid("json").userMessage,
      idempotencyKey: c.req.valid("header")["idempotency-key"],
      editOf: messageId,
    });
    return (await acceptedAnswer(c, answer)) as never;
  },
);

promptRoutes.openapi(
  createRoute({
    method: "post",
    path: "/{id}/message/{messageId}/regenerate",
    operationId: "regeneratePrompt",
    tags: ["Messages"],
    summary: "Regenerate a completed prompt's reply: a new reply version",
    description:
      "The prompt goes back to pending (reply null until the new one arrives) and the active branch ends at it; its earlier replies, and what followed them, " +
      "stay as other versions. Queued like a send: one quota unit, 429, and with Accept: text/event-stream its stream. " +
      "A failed or cancelled prompt is retried with …/retry instead (409 NOT_COMPLETED here), and a pending one is still being answered (409 too). " +
      "With an Idempotency-Key, a repeat within 24 h answers the first regeneration again instead of starting another.",
    security: bearerAuth,
    request: { params: MessageParamsSchema, headers: idempotencyKeyHeader() },
    responses: {
      ...queuedResponses("the prompt (pending), its new reply as it is written, then the reply"),
      ...errorResponses({
        ...authErrors,
        404: "NOT_FOUND: no such chatroom, or no such prompt in it (a reply id too)",
        409: "NOT_COMPLETED: only a completed prompt can be regenerated; or IDEMPOTENCY_KEY_REUSED / IDEMPOTENCY_KEY_IN_USE",
        429: promptErrors[429],
        503: promptErrors[503],
      }),
    },
  }),
  async (c) => {
    const { id, messageId } = c.req.valid("param");
    const answer = await requeue(c.env, c.get("db"), {
      userId: c.get("userId"),
      chatroomId: id,
      promptId: messageId,
      mode: "regenerate",
      idempotencyKey: c.req.valid("header")["idempotency-key"],
    });
    return (await acceptedAnswer(c, answer)) as never;
  },
);

promptRoutes.openapi(
  createRoute({
    method: "get",
    path: "/{id}/message/{messageId}",
    operationId: "getPrompt",
    tags: ["Messages"],
    summary: "A prompt and its reply; with wait=N, held until the reply lands",
    description:
      "With wait > 0 the request returns as soon as the prompt leaves pending, or after N seconds; 404 at once if the chatroom is deleted meanwhile, " +
      "401 if the token is revoked meanwhile. Only prompt ids (role user) are found here.",
    security: bearerAuth,
    request: { params: MessageParamsSchema, query: WaitQuerySchema },
    responses: {
      200: jsonResponse(PromptResponseSchema, "The prompt, with reply null while pending"),
      ...errorResponses({ ...authErrors, 400: "VALIDATION_FAILED: wait out of 0–25", 404: "NOT_FOUND" }),
    },
  }),
  async (c) => {
    const { id, messageId } = c.req.valid("param");
    const deadline = Date.now() + c.req.valid("query").wait * 1000;
    let row = await findPromptWithReply(c.get("db"), c.get("userId"), id, messageId);
    if (!row) throw notFound("Message");
    if (row.status === "pending" && Date.now() < deadline) {
      // At the primary: the reply is written by the queue consumer, outside this request's session.
      row = await waitUntilSettled(c.env, createDb(c.env.DB), {
        subscriber: subscriberOf(c),
        chatroomId: id,
        promptId: messageId,
        run: row.incarnation,
        deadline,
      });
      // Its chatroom was deleted during the wait.
      if (!row) throw notFound("Message");
    }
    return c.json({ success: true as const, message: "Prompt", prompt: toPromptResponse(row) }, 200);
  },
);

promptRoutes.openapi(
  createRoute({
    method: "post",
    path: "/{id}/message/{messageId}/retry",
    operationId: "retryPrompt",
    tags: ["Messages"],
    summary: "Queue a failed or cancelled prompt again (counts against the quota again)",
    security: bearerAuth,
    request: { params: MessageParamsSchema },
    responses: {
      202: { ...jsonResponse(PromptAcceptedSchema, "Queued again"), headers: rateLimitHeaders },
      ...errorResponses({ ...promptErrors, 409: "NOT_FAILED: only failed or cancelled prompts can be retried" }),
    },
  }),
  async (c) => {
    const { id, messageId } = c.req.valid("param");
    const answer = await requeue(c.env, c.get("db"), {
      userId: c.get("userId"),
      chatroomId: id,
      promptId: messageId,
      mode: "retry",
    });
    for (const [name, value] of Object.entries(answer.headers)) c.header(name, value);
    return c.json(answer.body, 202);
  },
);

const FEEDBACK_DESCRIPTION =
  "Only the owner's assistant replies take feedback (any status); a prompt id, another user's message or an unknown id is 404. " +
  "The contract's `{message}` answer comes as `reply`, since every body's `message` is its human-readable text.";

promptRoutes.openapi(
  createRoute({
    method: "put",
    path: "/{id}/message/{messageId}/feedback",
    operationId: "putFeedback",
    tags: ["Messages"],
    summary: "Rate a reply up or down, with an optional comment",
    description: `${FEEDBACK_DESCRIPTION} A second PUT replaces the first (a comment left out is cleared).`,
    security: bearerAuth,
    request: { params: MessageParamsSchema, body: jsonBody(FeedbackBodySchema) },
    responses: {
      200: jsonResponse(FeedbackResponseSchema, "The reply with its feedback"),
      ...errorResponses({
        ...bodyErrors,
        ...authErrors,
        404: "NOT_FOUND: no such reply of this user in this chatroom",
      }),
    },
  }),
  async (c) => {
    const { rating, comment } = c.req.valid("json");
    const feedback = { rating, comment: comment ?? null, at: new Date() };
    return feedbackAnswer(c, c.req.valid("param"), feedback, "Feedback saved");
  },
);

promptRoutes.openapi(
  createRoute({
    method: "delete",
    path: "/{id}/message/{messageId}/feedback",
    operationId: "deleteFeedback",
    tags: ["Messages"],
    summary: "Remove the feedback on a reply",
    description: `${FEEDBACK_DESCRIPTION} Removing feedback that was never given answers 200 too.`,
    security: bearerAuth,
    request: { params: MessageParamsSchema },
    responses: {
      200: jsonResponse(FeedbackResponseSchema, "The reply, with feedback null"),
      ...errorResponses({ ...authErrors, 404: "NOT_FOUND: no such reply of this user in this chatroom" }),
    },
  }),
  async (c) => feedbackAnswer(c, c.req.valid("param"), null, "Feedback removed"),
);

promptRoutes.openapi(
  createRoute({
    method: "post",
    path: "/{id}/message/{messageId}/cancel",
    operationId: "cancelPrompt",
    tags: ["Live replies"],
    summary: "Stop a pending prompt, keeping the text written so far",
    description:
      "A pending prompt becomes cancelled at once, whether still queued or being written; generation stops within a second. " +
      "Exactly the text the delta events carried is kept as the reply (status cancelled); with none, the reply is null and the quota unit is given back.",
    security: bearerAuth,
    request: { params: MessageParamsSchema },
    responses: {
      200: jsonResponse(PromptResponseSchema, "The cancelled prompt"),
      ...errorResponses({ ...authErrors, 404: "NOT_FOUND", 409: "NOT_PENDING: the prompt already settled" }),
    },
  }),
  async (c) => {
    const { id, messageId } = c.req.valid("param");
    const row = await findOwnedPrompt(c.get("db"), c.get("userId"), id, messageId);
    if (!row) throw notFound("Message");
    if (row.status !== "pending") throw notPending();
    const frozen = await freezeForCancel(c.env, id, messageId, row.incarnation);
    if (!frozen.settled) await settleCancelled(c.env, c.get("db"), row, frozen.text);
    const settled = await findPromptWithReply(c.get("db"), c.get("userId"), id, messageId);
    if (settled?.status !== "cancelled") throw notPending();
    return c.json({ success: true as const, message: "Prompt cancelled", prompt: toPromptResponse(settled) }, 200);
  },
);

async function feedbackAnswer(
  c: Context<AppEnv>,
  { id, messageId }: { id: string; messageId: string },
  feedback: FeedbackToStore | null,
  message: string,
) {
  const row = await setFeedback(c.get("db"), { userId: c.get("userId"), chatroomId: id, messageId }, feedback);
  if (!row) throw notFound("Reply");
  return c.json({ success: true as const, message, reply: toMessageResponse(row) }, 200);
}

/** True when the client asked for Server-Sent Events (`Accept: text/event-stream`). */
function wantsEventStream(accept: string | undefined) {
  return /(^|,)\s*text\/event-stream\s*(;|,|$)/i.test(accept ?? "");
}
