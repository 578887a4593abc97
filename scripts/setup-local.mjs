// Prepares a fresh checkout for `wrangler dev`: a local secrets file and the local D1 schema.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

if (!existsSync(".dev.vars")) {
  const example = readFileSync(".dev.vars.example", "utf8");
  const secret = randomBytes(48).toString("base64url");
  writeFileSync(".dev.vars", example.replace(/^JWT_SECRET=.*$/m, `JWT_SECRET=${secret}`), { mode: 0o600 });
  console.log(
    "Created .dev.vars with a random JWT_SECRET (add GEMINI_API_KEY and Stripe keys there when you have them).",
  );
}

const result = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local"], {
  stdio: "inherit",
  shell: process.platform === "win32",
  env: { ...process.env, CI: "true" },
});
process.exit(result.status ?? 1);
