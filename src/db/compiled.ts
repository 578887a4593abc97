import { fillPlaceholders, getTableColumns, type Query } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { SQLiteTable } from "drizzle-orm/sqlite-core";
import type { Database } from "./client";

/**
 * Compiled reads, for the hot reads: Drizzle builds a query's SQL once per isolate, with
 * `sql.placeholder(name)` for every value, and each request binds its values to that SQL on its own D1
 * session. Building a Drizzle query costs 50–100 µs of CPU on every request (measured: `npm run bench`);
 * binding a compiled one costs a few. Values are bound as they are (no column encoding): pass what D1
 * stores (a timestamp as epoch milliseconds). Drizzle's own prepared statements cannot do this, as they are tied
 * to the client they were prepared on, and every request reads through a session of its own
 * (src/middleware/d1-session.ts).
 */

/** Only builds SQL: its client is never called. */
const builder = drizzle({} as D1Database);

/** A statement for `values`, on the database or session `db` reads through. */
export type CompiledQuery<V extends string> = (
  db: Database,
  values: Record<V, string | number | null>,
) => D1PreparedStatement;

export function compiled<V extends string>(build: (db: Database) => { toSQL(): Query }): CompiledQuery<V> {
  let query: Query | undefined;
  return (db, values) => {
    query ??= build(builder).toSQL();
    return db.$client.prepare(query.sql).bind(...fillPlaceholders(query.params, values));
  };
}

/**
 * Runs compiled statements in one D1 batch (one round trip, one transaction): one result per statement,
 * in order. A short answer is a fault, never read as empty results.
 */
export async function batch<T extends D1PreparedStatement[]>(
  db: Database,
  statements: [...T],
): Promise<{ [K in keyof T]: D1Result }> {
  const results = await db.$client.batch(statements);
  if (results.length !== statements.length) throw new Error("D1 batch answered fewer results than statements");
  return results as { [K in keyof T]: D1Result };
}

type Row = Record<string, unknown>;

/**
 * Maps a D1 result row (keyed by column name) of a compiled `select()` from `table` to the table's
 * fields, each value decoded by its column as Drizzle decodes it (timestamps become Dates).
 */
export function rowMapper<T extends SQLiteTable>(table: T): (row: Row) => T["$inferSelect"] {
  const columns = Object.entries(getTableColumns(table));
  return (row) => {
    const mapped: Row = {};
    for (const [field, column] of columns) {
      if (!(column.name in row)) throw new Error(`compiled query result has no column ${column.name}`);
      const value = row[column.name];
      mapped[field] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
    }
    return mapped as T["$inferSelect"];
  };
}

/** The rows of a D1 result, as `map` makes them. */
export const rowsOf = <T>(result: D1Result, map: (row: Row) => T): T[] => (result.results as Row[]).map(map);
