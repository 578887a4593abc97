// Prepares a fresh checkout for `wrangler dev`: a local secrets file and the local D1 schema.
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { applyLocalMigrations } from "./migrate-local.mjs";

const example = readFileSync(".dev.vars.example", "utf8");
if (!existsSync(".dev.vars")) {
  const secret = randomBytes(48).toString("base64url");
  writeFileSync(".dev.vars", example.replace(/^JWT_SECRET=.*$/m, `JWT_SECRET=${secret}`), { mode: 0o600 });
  console.log(
    "Created .dev.vars with a random JWT_SECRET (add GEMINI_API_KEY and Stripe keys there when you have them).",
  );
} else {
  // A .dev.vars made before a variable joined the example gets it, with the example's value.
  const current = readFileSync(".dev.vars", "utf8");
  const has = new Set([...current.matchAll(/^([A-Z0-9_]+)=/gm)].map((match) => match[1]));
  const missing = example.split("\n").filter((line) => /^[A-Z0-9_]+=/.test(line) && !has.has(line.split("=")[0]));
  if (missing.length > 0) {
    appendFileSync(".dev.vars", `${current.endsWith("\n") ? "" : "\n"}${missing.join("\n")}\n`);
    console.log(`Added to .dev.vars from .dev.vars.example: ${missing.map((line) => line.split("=")[0]).join(", ")}`);
  }
}

try {
  applyLocalMigrations();
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
