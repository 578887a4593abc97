// The messages of a chatroom as the API shows them, and the reads every feature shows them from. Below
// every feature that lists, streams or exports messages; it imports none of them.
export {
  type BranchMessage,
  branchPage,
  branchPageStatement,
  CURSOR_PATTERN,
  findBranchPage,
  toBranchMessage,
  VERSION_COLUMNS,
  type Version,
  type VersionColumns,
  versionColumns,
  versionOf,
} from "./branch.repo";
export { findPromptWithReply, type PromptWithReplyRow } from "./messages.repo";
export {
  exampleChatroomId,
  exampleMessages,
  examplePromptWith,
  exampleReply,
  exampleUsage,
  FeedbackSchema,
  type MessageDto,
  MessageSchema,
  type PromptDto,
  PromptSchema,
  toMessageResponse,
  toPromptResponse,
  type UsageDto,
  UsageSchema,
  VersionSchema,
} from "./messages.schemas";
