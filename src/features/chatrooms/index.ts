// What other features may use of chatrooms; everything else here is chatrooms' own.
export { applyTitle, chatroomExists, listChatroomIds } from "./chatrooms.repo";
export { ChatroomIdParamsSchema, MessageParamsSchema, toChatroomResponse } from "./chatrooms.schemas";
