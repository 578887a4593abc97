import type { Context } from "hono";
import { unauthorized } from "../../lib/errors";
import type { AppEnv } from "../../types";
import { confirmPassword, revokeTokenVersion } from "../auth";
import { cancelSubscriptionNow } from "../billing";
import { forgetChatroomLists } from "../chatrooms";
import { announceChatroomsDeleted } from "../live";
import { deleteUserRows } from "./users.repo";

/**
 * Deletes the signed-in user's account, in the contract's order: the password (a wrong one is a failed
 * attempt), then the Stripe subscription (502 and nothing deleted when Stripe cannot cancel it), then
 * everything together: every row of the user in one D1 transaction, every token and stream ticket
 * revoked in KV, the cached chatroom lists removed, and each chatroom's hub told (`deleted` to its
 * streams). Queued prompts find no prompt and are acknowledged unanswered.
 */
export async function deleteAccount(c: Context<AppEnv>, password: string) {
  const db = c.get("db");
  const user = await confirmPassword(
    {
      env: c.env,
      db,
      ctx: c.executionCtx,
      connectingIp: c.req.header("CF-Connecting-IP"),
      userId: c.get("userId"),
      tokenVersion: c.get("tokenVersion"),
    },
    password,
  );
  await cancelSubscriptionNow(c.env, db, user.id, new Date());
  const chatroomIds = await deleteUserRows(db, user);
  // A password change or logout-all finished in between: this token is no longer current.
  if (!chatroomIds) throw unauthorized("revoked");
  await revokeTokenVersion(c.env, c.executionCtx, user.id, user.tokenVersion);
  announceChatroomsDeleted(c.env, c.executionCtx, chatroomIds);
  c.executionCtx.waitUntil(forgetChatroomLists(c.env.CACHE, user.id));
  console.log(
    JSON.stringify({ level: "info", message: "account deleted", userId: user.id, chatrooms: chatroomIds.length }),
  );
}
