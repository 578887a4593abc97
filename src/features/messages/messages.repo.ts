import { sql } from "drizzle-orm";
import type { Database } from "../../db/client";
import { chatrooms, type FEEDBACK_RATINGS, type MESSAGE_STATUSES, messages } from "../../db/schema";
import { type VersionColumns, versionColumns } from "./branch.repo";

type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/**
 * A prompt with its reply: the reply on the active branch, or its current run's when the branch does not
 * pass through the prompt; none while it is pending (a regenerated prompt waits for its new reply), nor
 * for a run cancelled before any text (an earlier run's reply stays a version, not this run's answer). The walk
 * up from the leaf stops at the prompt (ids grow down a branch), so a prompt near the leaf costs a few
 * steps.
 */
const promptWithReply = (userId: string, chatroomId: string, promptId: string) =>
  sql`WITH RECURSIVE up(id, parent_id, role) AS (
      SELECT m.id, m.parent_id, m.role FROM ${messages} m
        WHERE m.id = (SELECT active_leaf_id FROM ${chatrooms} WHERE id = ${chatroomId}) AND m.id > ${promptId}
      UNION ALL
      SELECT m.id, m.parent_id, m.role FROM ${messages} m JOIN up ON m.id = up.parent_id WHERE m.id > ${promptId}
    )
    SELECT p.id, p.chatroom_id, p.content, p.status, p.created_at, p.incarnation, p.parent_id, ${sql.raw(versionColumns("p"))},
      r.id AS reply_id, r.content AS reply_content, r.status AS reply_status, r.created_at AS reply_created_at, r.model AS reply_model,
      r.prompt_tokens, r.completion_tokens, r.feedback_rating, r.feedback_comment, r.feedback_at, ${sql.raw(versionColumns("r", "reply_"))}
    FROM ${messages} p LEFT JOIN ${messages} r ON p.status <> 'pending' AND r.id = COALESCE(
      (SELECT up.id FROM up WHERE up.parent_id = p.id AND up.role = 'assistant'),
      (SELECT x.id FROM ${messages} x WHERE x.chatroom_id = p.chatroom_id AND x.parent_id = p.id AND x.role = 'assistant'
        AND x.incarnation = p.incarnation ORDER BY x.id DESC LIMIT 1))
    WHERE p.id = ${promptId} AND p.chatroom_id = ${chatroomId} AND p.user_id = ${userId} AND p.role = 'user'`;

export type PromptWithReplyRow = VersionColumns &
  Partial<VersionColumns<"reply_">> & {
    id: string;
    chatroom_id: string;
    content: string;
    status: MessageStatus;
    created_at: number;
    parent_id: string | null;
    reply_model: string | null;
    /** The prompt's run: bumped by each retry. */
    incarnation: number;
    reply_id: string | null;
    reply_content: string | null;
    reply_status: Exclude<MessageStatus, "pending"> | null;
    reply_created_at: number | null;
    feedback_rating: (typeof FEEDBACK_RATINGS)[number] | null;
    feedback_comment: string | null;
    feedback_at: number | null;
    prompt_tokens: number | null;
    completion_tokens: number | null;
  };

export async function findPromptWithReply(db: Database, userId: string, chatroomId: string, promptId: string) {
  const [row] = await db.all<PromptWithReplyRow>(promptWithReply(userId, chatroomId, promptId));
  return row;
}
