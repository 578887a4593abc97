// What other features may use of chatrooms; everything else here is chatrooms' own.
export { forgetChatroomLists } from "./chatrooms.cache";
export { applyTitle, chatroomExists, listChatroomIds } from "./chatrooms.repo";
export {
  type ChatroomDto,
  ChatroomIdParamsSchema,
  ChatroomSchema,
  MessageParamsSchema,
  toChatroomResponse,
} from "./chatrooms.schemas";
