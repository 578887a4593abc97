// What other features may use of chatrooms; everything else here is chatrooms' own.
export { chatroomExists, listChatroomIds } from "./chatrooms.repo";
export { ChatroomIdParamsSchema, MessageParamsSchema } from "./chatrooms.schemas";
