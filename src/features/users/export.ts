import { sql } from "drizzle-orm";
import { type Database, toStatement } from "../../db/client";
import { messages, users } from "../../db/schema";
import { AppError } from "../../lib/errors";
import { toIso } from "../../lib/time";
import { shownName } from "../chatrooms/chatrooms.repo";
import { toBranchMessage, toMessageResponse, VERSION_COLUMNS } from "../messages";

/** One export a minute per user. */
export const EXPORT_INTERVAL_MS = 60_000;
/** Messages read per D1 query while writing an export: the export never holds more than this. */
export const EXPORT_PAGE = 500;

/**
 * Claims the user's export slot: one a minute, taken in one conditional write so two requests at once
 * cannot both pass. Throws 429 EXPORT_RATE_LIMITED (with Retry-After) when the last export is too recent.
 */
export async function claimExport(db: Database, userId: string, now: Date) {
  const [claimed, last] = await db.$client.batch([
    toStatement(
      db,
      sql`UPDATE ${users} SET last_export_at = ${now.getTime()}
        WHERE id = ${userId} AND (last_export_at IS NULL OR last_export_at <= ${now.getTime() - EXPORT_INTERVAL_MS})
        RETURNING id`,
    ),
    toStatement(db, sql`SELECT last_export_at FROM ${users} WHERE id = ${userId}`),
  ]);
  if (claimed?.results.length) return;
  const at = (last?.results[0] as { last_export_at?: number } | undefined)?.last_export_at ?? now.getTime();
  const retryAfter = Math.max(1, Math.ceil((at + EXPORT_INTERVAL_MS - now.getTime()) / 1000));
  throw new AppError(429, "EXPORT_RATE_LIMITED", "One export a minute: try again shortly", undefined, {
    "Retry-After": String(retryAfter),
  });
}

type Row = Record<string, unknown>;

/**
 * The whole account as one JSON document, written as it is read: the user, their subscription, every
 * chatroom with its settings and every message of every branch (oldest first, 500 at a time), and the
 * usage per day. Nothing secret is read: no password hash, OTP, token or Stripe id.
 */
export function exportStream(db: Database, userId: string, now: Date): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const write = (text: string) => writer.write(encoder.encode(text));
  const all = async (query: ReturnType<typeof sql>) => ((await db.all(query)) as Row[]) ?? [];

  (async () => {
    const [user] = await all(
      sql`SELECT id, phone_number, email, full_name, verified_at, created_at FROM ${users} WHERE id = ${userId}`,
    );
    const [subscription] = await all(
      sql`SELECT status, current_period_end, cancel_at_period_end FROM subscriptions WHERE user_id = ${userId}`,
    );
    await write(
      `{"exportedAt":${JSON.stringify(now.toISOString())},"user":${JSON.stringify({
        id: user?.id,
        phoneNumber: user?.phone_number,
        email: user?.email ?? null,
        fullName: user?.full_name ?? null,
        verifiedAt: toIso(user?.verified_at == null ? null : new Date(user.verified_at as number)),
        createdAt: toIso(user?.created_at == null ? null : new Date(user.created_at as number)),
      })},"subscription":${JSON.stringify(
        subscription
          ? {
              status: subscription.status ?? null,
              currentPeriodEnd: toIso(
                subscription.current_period_end == null ? null : new Date(subscription.current_period_end as number),
              ),
              cancelAtPeriodEnd: subscription.cancel_at_period_end === 1,
            }
          : null,
      )},"chatrooms":[`,
    );
    const rooms = await all(
      sql`SELECT id, name, system_instruction, model, active_leaf_id, created_at, updated_at FROM chatrooms WHERE user_id = ${userId} ORDER BY created_at, id`,
    );
    for (const [index, room] of rooms.entries()) {
      await write(
        `${index ? "," : ""}${JSON.stringify({
          id: room.id,
          name: shownName({ name: room.name as string }),
          systemInstruction: room.system_instruction ?? null,
          model: room.model ?? null,
          activeLeafId: room.active_leaf_id ?? null,
          createdAt: new Date(room.created_at as number).toISOString(),
          updatedAt: new Date(room.updated_at as number).toISOString(),
        }).slice(0, -1)},"messages":[`,
      );
      let after = "";
      let first = true;
      for (;;) {
        const page = await all(
          sql`SELECT m.*, ${sql.raw(VERSION_COLUMNS)} FROM ${messages} m
            WHERE m.chatroom_id = ${room.id as string} AND m.id > ${after} ORDER BY m.id LIMIT ${EXPORT_PAGE}`,
        );
        for (const row of page) {
          await write(`${first ? "" : ","}${JSON.stringify(exportedMessage(row))}`);
          first = false;
        }
        if (page.length < EXPORT_PAGE) break;
        after = page.at(-1)?.id as string;
      }
      await write("]}");
    }
    const usage = await all(sql`SELECT day, count FROM prompt_usage WHERE user_id = ${userId} ORDER BY day`);
    await write(`],"usage":${JSON.stringify(usage.map((row) => ({ date: row.day, prompts: row.count })))}}`);
    await writer.close();
  })().catch(async (err) => {
    console.error(JSON.stringify({ level: "error", message: "export failed", userId, error: String(err) }));
    // The client sees a cut stream, never half a document that parses.
    await writer.abort(err).catch(() => {});
  });
  return readable;
}

/**
 * A message as the API shows it everywhere (toMessageResponse), with every reply's token counts,
 * thinking tokens included, whatever its status.
 */
function exportedMessage(row: Row) {
  const message = toBranchMessage(row);
  return {
    ...toMessageResponse(message),
    ...(message.role === "assistant"
      ? {
          tokens: {
            prompt: message.promptTokens,
            completion: message.completionTokens,
            thoughts: message.thoughtTokens,
          },
        }
      : {}),
  };
}
