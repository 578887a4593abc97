import { sql } from "drizzle-orm";
import { type Database, toStatement } from "../../db/client";
import { proCondition } from "../billing";

export type UsageDay = { date: string; prompts: number; promptTokens: number; outputTokens: number };

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The user's prompts and tokens per UTC day, for the `days` days up to and including `today` (newest
 * first, days without any included as zeros), and whether the user is Pro now: one round trip. Prompts
 * are the day's quota count (units given back are not in it); tokens those of the replies written that
 * day, read through messages_user_created_idx.
 */
export async function readUsage(db: Database, userId: string, today: string, days: number, now: Date) {
  const firstDay = new Date(Date.parse(`${today}T00:00:00Z`) - (days - 1) * DAY_MS);
  const first = firstDay.toISOString().slice(0, 10);
  const [counts, tokens, flags] = await db.$client.batch([
    db.$client
      .prepare("SELECT day, count FROM prompt_usage WHERE user_id = ? AND day >= ? AND day <= ?")
      .bind(userId, first, today),
    db.$client
      .prepare(
        `SELECT strftime('%Y-%m-%d', created_at / 1000, 'unixepoch') AS day,
          sum(coalesce(prompt_tokens, 0)) AS prompt_tokens,
          sum(coalesce(completion_tokens, 0) + coalesce(thought_tokens, 0)) AS output_tokens
        FROM messages WHERE user_id = ? AND created_at >= ? AND role = 'assistant'
        GROUP BY day`,
      )
      .bind(userId, firstDay.getTime()),
    toStatement(db, sql`SELECT ${proCondition(userId, now)} AS pro`),
  ]);
  const byDay = new Map<string, UsageDay>();
  for (let i = 0; i < days; i++) {
    const date = new Date(Date.parse(`${today}T00:00:00Z`) - i * DAY_MS).toISOString().slice(0, 10);
    byDay.set(date, { date, prompts: 0, promptTokens: 0, outputTokens: 0 });
  }
  for (const row of (counts?.results ?? []) as { day: string; count: number }[]) {
    const day = byDay.get(row.day);
    if (day) day.prompts = row.count;
  }
  for (const row of (tokens?.results ?? []) as { day: string; prompt_tokens: number; output_tokens: number }[]) {
    const day = byDay.get(row.day);
    if (day) {
      day.promptTokens = row.prompt_tokens;
      day.outputTokens = row.output_tokens;
    }
  }
  const pro = (flags?.results[0] as { pro?: number } | undefined)?.pro === 1;
  return { days: [...byDay.values()], pro };
}
