import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { AppError, notFound } from "../../lib/errors";
import {
  authErrors,
  bearerAuth,
  built,
  docsOnly,
  errorResponses,
  jsonResponse,
  successSchema,
} from "../../lib/openapi";
import { createRouter } from "../../lib/validate";
import type { AppEnv } from "../../types";
import { ChatroomIdParamsSchema, chatroomExists } from "../chatrooms";
import { renderSharePage, SHARE_PAGE_CSP } from "./share-page";
import { deleteShare, findShare, insertShare, listShares, readShareable, type Share } from "./shares.repo";

/** 128 random bits, base64url (22 characters). */
const SHARE_ID = /^[A-Za-z0-9_-]{22}$/;

function newShareId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

const exampleShare = {
  id: "pQ3xv9Lr0kq8mZt2Wb7yXA",
  url: "https://gemini.example.com/s/pQ3xv9Lr0kq8mZt2Wb7yXA",
  createdAt: "2026-08-15T09:40:00.000Z",
  messageCount: 2,
};

const ShareSchema = docsOnly(() =>
  z
    .object({
      id: z.string(),
      url: z.string().openapi({
        description: "PUBLIC_BASE_URL + /s/<id>: the read-only page (a path alone while PUBLIC_BASE_URL is not set)",
      }),
      createdAt: z.string(),
      messageCount: z.number().int(),
    })
    .openapi("Share", { example: exampleShare }),
);

/** The answer of a share's creation and of its revocation. */
const ShareResponseSchema = docsOnly(() => successSchema({ share: built(ShareSchema) }));

const SharedConversationSchema = docsOnly(() =>
  z
    .object({
      id: z.string(),
      chatroomName: z.string().nullable().openapi({ description: "null when the chatroom had no name yet" }),
      createdAt: z.string(),
      messages: z.array(z.object({ role: z.enum(["user", "assistant"]), content: z.string(), createdAt: z.string() })),
    })
    .openapi("SharedConversation", {
      example: {
        id: exampleShare.id,
        chatroomName: "Trip planning",
        createdAt: exampleShare.createdAt,
        messages: [
          { role: "user", content: "Plan 3 days in Lisbon", createdAt: "2026-08-15T09:30:00.000Z" },
          { role: "assistant", content: "Day 1: Alfama and Baixa…", createdAt: "2026-08-15T09:30:04.000Z" },
        ],
      },
    }),
);

const ShareParamsSchema = ChatroomIdParamsSchema.extend({
  shareId: z.string().openapi({ param: { name: "shareId", in: "path" }, example: exampleShare.id }),
});
const PublicShareParamsSchema = z.object({
  shareId: z.string().openapi({ param: { name: "shareId", in: "path" }, example: exampleShare.id }),
});

const shareUrl = (env: Env, id: string) => `${(env.PUBLIC_BASE_URL ?? "").replace(/\/+$/, "")}/s/${id}`;
const toShare = (env: Env, share: Pick<Share, "id" | "createdAt" | "messageCount">) => ({
  id: share.id,
  url: shareUrl(env, share.id),
  createdAt: share.createdAt.toISOString(),
  messageCount: share.messageCount,
});

/** A chatroom's shares: mounted at /api/chatroom behind requireAuth (src/app.ts). */
export const shareRoutes = createRouter<AppEnv>();

shareRoutes.openapi(
  createRoute({
    method: "post",
    path: "/{id}/share",
    operationId: "shareChatroom",
    tags: ["Your data"],
    summary: "Share a read-only snapshot of the chatroom's active branch",
    description:
      "The snapshot holds the branch's completed messages and cancelled ones with text (the last 1000 at most), as they are now: later messages are never added. " +
      "Anyone with the link reads it, without an account; revoke it with DELETE …/share/{shareId}.",
    security: bearerAuth,
    request: { params: ChatroomIdParamsSchema },
    responses: {
      201: jsonResponse(ShareResponseSchema, "The share"),
      ...errorResponses({ ...authErrors, 404: "NOT_FOUND", 409: "NOTHING_TO_SHARE: no completed reply yet" }),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const shareable = await readShareable(c.get("db"), c.get("userId"), id);
    if (!shareable) throw notFound("Chatroom");
    if (!shareable.messages.some((m) => m.role === "assistant" && m.status === "completed")) {
      throw new AppError(409, "NOTHING_TO_SHARE", "This chatroom has no completed reply to share yet");
    }
    const messages = shareable.messages.map(({ role, content, createdAt }) => ({ role, content, createdAt }));
    const share: Share = {
      id: newShareId(),
      userId: c.get("userId"),
      chatroomId: id,
      chatroomName: shareable.name,
      messages: JSON.stringify(messages),
      messageCount: messages.length,
      createdAt: new Date(),
    };
    await insertShare(c.get("db"), share);
    return c.json({ success: true as const, message: "Chatroom shared", share: toShare(c.env, share) }, 201);
  },
);

shareRoutes.openapi(
  createRoute({
    method: "get",
    path: "/{id}/shares",
    operationId: "listShares",
    tags: ["Your data"],
    summary: "The chatroom's shared links, newest first",
    security: bearerAuth,
    request: { params: ChatroomIdParamsSchema },
    responses: {
      200: jsonResponse(
        docsOnly(() => successSchema({ shares: z.array(built(ShareSchema)) })),
        "The shares",
      ),
      ...errorResponses({ ...authErrors, 404: "NOT_FOUND" }),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const [owned, found] = await Promise.all([
      chatroomExists(c.get("db"), c.get("userId"), id),
      listShares(c.get("db"), c.get("userId"), id),
    ]);
    if (!owned) throw notFound("Chatroom");
    return c.json(
      { success: true as const, message: "Shares", shares: found.map((share) => toShare(c.env, share)) },
      200,
    );
  },
);

shareRoutes.openapi(
  createRoute({
    method: "delete",
    path: "/{id}/share/{shareId}",
    operationId: "revokeShare",
    tags: ["Your data"],
    summary: "Revoke a shared link: it answers 404 from now on",
    security: bearerAuth,
    request: { params: ShareParamsSchema },
    responses: {
      200: jsonResponse(ShareResponseSchema, "The revoked share"),
      ...errorResponses({ ...authErrors, 404: "NOT_FOUND: no such share of this chatroom of yours" }),
    },
  }),
  async (c) => {
    const { id, shareId } = c.req.valid("param");
    const deleted = await deleteShare(c.get("db"), c.get("userId"), id, shareId);
    if (!deleted) throw notFound("Share");
    return c.json({ success: true as const, message: "Share revoked", share: toShare(c.env, deleted) }, 200);
  },
);

/** The public side: mounted at /api/shared (src/app.ts), no auth. */
export const sharedRoutes = createRouter<AppEnv>();

/** Answers 304 when the client holds the share already; undefined otherwise. The share never changes. */
function cacheHeaders(c: Context<AppEnv>, share: { id: string; createdAt: Date }) {
  const etag = `"${share.id}.${share.createdAt.getTime().toString(36)}"`;
  c.header("Cache-Control", "public, max-age=60");
  c.header("ETag", etag);
  const sent = c.req.header("If-None-Match");
  return sent?.split(",").some((tag) => tag.trim().replace(/^W\//, "") === etag) ?? false;
}

async function publicShare(c: Context<AppEnv>, shareId: string) {
  const share = SHARE_ID.test(shareId) ? await findShare(c.get("db"), shareId) : undefined;
  if (!share) throw notFound("Share");
  return share;
}

sharedRoutes.openapi(
  createRoute({
    method: "get",
    path: "/{shareId}",
    operationId: "getSharedConversation",
    tags: ["Your data"],
    summary: "A shared conversation (no auth)",
    description:
      "Names no user, phone, chatroom or message id. Cache-Control: public, max-age=60, with an ETag (If-None-Match answers 304). " +
      "After revocation, or deletion of the chatroom or the account, 404 (edge caches within 60 s).",
    security: [],
    request: { params: PublicShareParamsSchema },
    responses: {
      200: jsonResponse(
        docsOnly(() => successSchema({ share: built(SharedConversationSchema) })),
        "The snapshot",
      ),
      304: { description: "Not modified: the ETag sent in If-None-Match is current" },
      ...errorResponses({ 404: "NOT_FOUND" }),
    },
  }),
  async (c) => {
    const share = await publicShare(c, c.req.valid("param").shareId);
    if (cacheHeaders(c, share)) return c.body(null, 304) as never;
    return c.json(
      {
        success: true as const,
        message: "Shared conversation",
        share: {
          id: share.id,
          chatroomName: share.chatroomName === "" ? null : share.chatroomName,
          createdAt: share.createdAt.toISOString(),
          messages: JSON.parse(share.messages),
        },
      },
      200,
    );
  },
);

/** The read-only page at /s/:shareId (src/app.ts): HTML, no script, a strict CSP, every text escaped. */
export async function sharePage(c: Context<AppEnv>) {
  const share = await publicShare(c, c.req.param("shareId") ?? "");
  if (cacheHeaders(c, share)) return c.body(null, 304);
  c.header("Content-Security-Policy", await SHARE_PAGE_CSP());
  return c.html(renderSharePage(share));
}
