import type { D1Migration } from "@cloudflare/vitest-pool-workers";

/** Applies migrations in order, skipping those already applied (as `wrangler d1 migrations apply` does). */
export async function applyMigrations(db: D1Database, migrations: D1Migration[]) {
  await db.prepare("CREATE TABLE IF NOT EXISTS applied_migrations (name TEXT PRIMARY KEY)").run();
  const applied = new Set(
    (await db.prepare("SELECT name FROM applied_migrations").all<{ name: string }>()).results.map((row) => row.name),
  );
  for (const migration of migrations) {
    if (applied.has(migration.name)) continue;
    await db.batch([
      ...migration.queries.map((query) => db.prepare(query)),
      db.prepare("INSERT INTO applied_migrations (name) VALUES (?)").bind(migration.name),
    ]);
  }
}
