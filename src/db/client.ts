import type { SQL } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";

/**
 * A Drizzle client over D1 (or a D1 session), made per request. Without a schema: the relational query
 * API (`db.query.*`) is not used, and building its config would cost every request CPU for nothing.
 */
export function createDb(d1: D1Database) {
  return drizzle(d1);
}

export type Database = ReturnType<typeof createDb>;

const dialect = new SQLiteAsyncDialect();

/**
 * Turns a drizzle `sql` template into a D1 statement, for the conditional statements that drizzle's
 * builders cannot express (INSERT … SELECT … WHERE, UPDATE OR IGNORE) and that must run in one
 * `batch` — one round trip, one transaction.
 */
export function toStatement(db: Database, query: SQL): D1PreparedStatement {
  const { sql, params } = dialect.sqlToQuery(query);
  return db.$client.prepare(sql).bind(...params);
}
