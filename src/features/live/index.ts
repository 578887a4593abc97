// What other features (and the auth middleware) may use of live; everything else here is live's own.
export { DeltaPublisher } from "./delta-publisher";
export {
  announceBranch,
  announceChatroom,
  announceChatroomDeleted,
  announceChatroomsDeleted,
  announcePrompt,
  announceReply,
  endRevokedStreams,
  freezeForCancel,
  generationChannel,
  isGenerating,
} from "./hub";
export { sseResponse } from "./live.schemas";
export { promptStream, subscriberOf, waitUntilSettled } from "./prompt-stream";
export { verifyTicket } from "./tickets";
