import { createRoute, z } from "@hono/zod-openapi";
import { createDb } from "../../db/client";
import { AppError, notFound } from "../../lib/errors";
import { uuidv7 } from "../../lib/ids";
import {
  authErrors,
  bearerAuth,
  bodyErrors,
  errorResponses,
  jsonBody,
  jsonResponse,
  MessageOnlySchema,
} from "../../lib/openapi";
import { createRouter } from "../../lib/validate";
import type { AppEnv } from "../../types";
import { isPro } from "../billing";
import { announceBranch, announceChatroom, announceChatroomDeleted } from "../live";
import { toMessageResponse } from "../messages";
import { checkModelChoice } from "../models/models";
import {
  forgetCachedVersion,
  knownCachedVersion,
  readChatroomListJson,
  rememberCachedVersion,
  storeChatroomList,
} from "./chatrooms.cache";
import {
  deleteChatroom,
  findChatroomWithMessages,
  findListVersionAndRooms,
  insertChatroom,
  listChatrooms,
  switchActiveBranch,
  updateChatroom,
} from "./chatrooms.repo";
import {
  ActiveBranchBodySchema,
  ActiveBranchResponseSchema,
  ChatroomDetailResponseSchema,
  ChatroomIdParamsSchema,
  ChatroomListResponseSchema,
  ChatroomResponseSchema,
  CreateChatroomBodySchema,
  toChatroomListItem,
  toChatroomResponse,
  UpdateChatroomBodySchema,
} from "./chatrooms.schemas";

const RECENT_MESSAGES = 20;
const nameTaken = () => new AppError(409, "CHATROOM_NAME_TAKEN", "You already have a chatroom with this name");
const chatroomNotFound = () => notFound("Chatroom");

/** Mounted at /api/chatroom behind requireAuth (src/app.ts). */
export const chatroomRoutes = createRouter<AppEnv>();

chatroomRoutes.openapi(
  createRoute({
    method: "post",
    path: "/",
    operationId: "createChatroom",
    tags: ["Chatrooms"],
    summary: "Create a chatroom, optionally with its system instruction and model",
    description:
      "Without a name, the chatroom is named after its first reply completes (a short title from Gemini; name is null until then).",
    security: bearerAuth,
    request: { body: jsonBody(CreateChatroomBodySchema) },
    responses: {
      201: jsonResponse(ChatroomResponseSchema, "Created"),
      ...errorResponses({
        ...bodyErrors,
        ...authErrors,
        403: "PRO_REQUIRED: the model is for Pro users",
        409: "CHATROOM_NAME_TAKEN (names are unique per user, ignoring case)",
      }),
    },
  }),
  async (c) => {
    const { name, systemInstruction, model } = c.req.valid("json");
    if (model) await checkModelChoice(c.env, model, () => isPro(c.get("db"), c.get("userId")));
    const room = await insertChatroom(c.get("db"), {
      id: uuidv7(),
      userId: c.get("userId"),
      name,
      systemInstruction,
      model,
      now: new Date(),
    });
    if (!room) throw nameTaken();
    return c.json({ success: true as const, message: "Chatroom created", chatroom: toChatroomResponse(room) }, 201);
  },
);

chatroomRoutes.openapi(
  createRoute({
    method: "get",
    path: "/",
    operationId: "listChatrooms",
    tags: ["Chatrooms"],
    summary: "List your chatrooms, newest activity first",
    description:
      "Served from Workers KV when cached (X-Cache: HIT); any change to your rooms is visible on your next call.",
    security: bearerAuth,
    responses: {
      200: {
        ...jsonResponse(ChatroomListResponseSchema, "Your chatrooms (always an array)"),
        headers: z.object({ "X-Cache": z.enum(["HIT", "MISS"]) }),
      },
      ...errorResponses(authErrors),
    },
  }),
  async (c) => {
    // Version and list from the primary: replies are written by the queue consumer, outside any
    // client's session, and a list must never be stored under a version newer than what it shows.
    // One round trip: the cached list at the version this isolate knows, read beside D1's version and
    // (unless the version is still that one) D1's list (chatrooms.cache.ts).
    const primary = createDb(c.env.DB);
    const userId = c.get("userId");
    const known = knownCachedVersion(userId);
    const [{ version, rooms: fromD1 }, cached] = await Promise.all([
      findListVersionAndRooms(primary, userId, known),
      known === undefined ? undefined : readChatroomListJson(c.env.CACHE, userId, known),
    ]);
    if (version === known && cached) {
      rememberCachedVersion(userId, version);
      c.header("X-Cache", "HIT");
      c.header("Content-Type", "application/json");
      // The same body c.json would make, around the list exactly as KV holds it. Hono types only c.json
      // answers against the route's schema, so this one is cast; the tests check every answer against
      // the OpenAPI document.
      return c.body(`{"success":true,"message":"Chatrooms","chatrooms":${cached}}`, 200) as never;
    }
    // KV lost that list (expired, evicted or unreadable), or D1 was rewound (Time Travel) below it:
    // then what KV holds for the versions reached again predates the rewind, and is replaced.
    const rewound = known !== undefined && version < known;
    if (known !== undefined && (!fromD1 || rewound)) forgetCachedVersion(userId, known);
    const rooms = (fromD1 ?? (await listChatrooms(primary, userId))).map(toChatroomListItem);
    c.executionCtx.waitUntil(storeChatroomList(c.env.CACHE, userId, version, rooms, { overwrite: rewound }));
    c.header("X-Cache", "MISS");
    return c.json({ success: true as const, message: "Chatrooms", chatrooms: rooms }, 200);
  },
);

chatroomRoutes.openapi(
  createRoute({
    method: "get",
    path: "/{id}",
    operationId: "getChatroom",
    tags: ["Chatrooms"],
    summary: "A chatroom with its last 20 messages",
    security: bearerAuth,
    request: { params: ChatroomIdParamsSchema },
    responses: {
      200: jsonResponse(ChatroomDetailResponseSchema, "The chatroom"),
      ...errorResponses({ ...authErrors, 404: "NOT_FOUND" }),
    },
  }),
  async (c) => {
    const { room, recent } = await findChatroomWithMessages(
      c.get("db"),
      c.get("userId"),
      c.req.valid("param").id,
      RECENT_MESSAGES,
    );
    if (!room) throw chatroomNotFound();
    const chatroom = { ...toChatroomResponse(room), messages: recent.map(toMessageResponse) };
    return c.json({ success: true as const, message: "Chatroom", chatroom }, 200);
  },
);

chatroomRoutes.openapi(
  createRoute({
    method: "patch",
    path: "/{id}",
    operationId: "renameChatroom",
    tags: ["Chatrooms"],
    summary: "Rename a chatroom or change its system instruction and model",
    description:
      "Send any of name, systemInstruction and model (null clears the last two). Settings apply to prompts whose answer starts after the change. " +
      "Every device gets a `chatroom` event with the chatroom as it now is.",
    security: bearerAuth,
    request: { params: ChatroomIdParamsSchema, body: jsonBody(UpdateChatroomBodySchema) },
    responses: {
      200: jsonResponse(ChatroomResponseSchema, "Changed"),
      ...errorResponses({
        ...bodyErrors,
        ...authErrors,
        403: "PRO_REQUIRED: the model is for Pro users",
        404: "NOT_FOUND",
        409: "CHATROOM_NAME_TAKEN",
      }),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const change = c.req.valid("json");
    if (change.model) await checkModelChoice(c.env, change.model, () => isPro(c.get("db"), c.get("userId")));
    const result = await updateChatroom(c.get("db"), c.get("userId"), id, change, new Date());
    if (result.kind === "not-found") throw chatroomNotFound();
    if (result.kind === "taken") throw nameTaken();
    const chatroom = toChatroomResponse(result.room);
    await announceChatroom(c.env, chatroom);
    return c.json({ success: true as const, message: "Chatroom updated", chatroom }, 200);
  },
);

chatroomRoutes.openapi(
  createRoute({
    method: "delete",
    path: "/{id}",
    operationId: "deleteChatroom",
    tags: ["Chatrooms"],
    summary: "Delete a chatroom and its messages",
    security: bearerAuth,
    request: { params: ChatroomIdParamsSchema },
    responses: {
      200: jsonResponse(MessageOnlySchema, "Deleted"),
      ...errorResponses({ ...authErrors, 404: "NOT_FOUND" }),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    if (!(await deleteChatroom(c.get("db"), c.get("userId"), id))) throw chatroomNotFound();
    await announceChatroomDeleted(c.env, id);
    return c.json({ success: true as const, message: "Chatroom deleted" }, 200);
  },
);

chatroomRoutes.openapi(
  createRoute({
    method: "put",
    path: "/{id}/active-branch",
    operationId: "switchBranch",
    tags: ["Chatrooms"],
    summary: "Show another version: the active branch runs through a message, down to the newest leaf beneath it",
    description:
      "The newest child is taken at each step below the message; a prompt's follow-up prompts (sent while it was still pending) come before its replies, " +
      "so the branch follows the conversation. Every device gets a `branch` event. Switching to the branch already active answers 200 and changes nothing. " +
      "An unknown id, another chatroom's message or another user's is 404.",
    security: bearerAuth,
    request: { params: ChatroomIdParamsSchema, body: jsonBody(ActiveBranchBodySchema) },
    responses: {
      200: jsonResponse(ActiveBranchResponseSchema, "The chatroom and the last 20 messages of its new active branch"),
      ...errorResponses({ ...bodyErrors, ...authErrors, 404: "NOT_FOUND: no such chatroom, or no such message in it" }),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const { messageId } = c.req.valid("json");
    const switched = await switchActiveBranch(c.get("db"), c.get("userId"), id, messageId, RECENT_MESSAGES);
    if (!switched.room) throw chatroomNotFound();
    if (!switched.moved) throw notFound("Message");
    await announceBranch(c.env, id, switched.room.activeLeafId);
    return c.json(
      {
        success: true as const,
        message: "Active branch switched",
        chatroom: toChatroomResponse(switched.room),
        messages: switched.recent.map(toMessageResponse),
      },
      200,
    );
  },
);
