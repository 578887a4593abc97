// Applies migrations/ to the local D1 database through wrangler, printing one line instead of wrangler's
// banner and table (or, when it fails, everything wrangler said).
import { spawnSync } from "node:child_process";

/**
 * `persistTo`: wrangler's --persist-to (default: .wrangler/state). `announce`: print the line even when
 * nothing was applied. Returns how many migrations were applied; throws when wrangler fails.
 */
export function applyLocalMigrations({ persistTo, announce = true } = {}) {
  const persist = persistTo ? ["--persist-to", persistTo] : [];
  const run = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local", ...persist], {
    encoding: "utf8",
    env: { ...process.env, CI: "true" },
    shell: process.platform === "win32",
  });
  const said = `${run.stdout ?? ""}${run.stderr ?? ""}`;
  if (run.status !== 0) {
    process.stderr.write(said);
    throw new Error("applying the local D1 migrations failed (wrangler's output is above)");
  }
  // Wrangler redraws its table after each migration: count each name once.
  const applied = [...new Set([...said.matchAll(/│\s*(\d{4}_\S+\.sql)\s*│\s*✅/g)].map((match) => match[1]))];
  if (applied.length > 0) console.log(`Local D1: applied ${applied.length} migrations (up to ${applied.at(-1)})`);
  else if (announce) console.log("Local D1: up to date");
  return applied.length;
}
