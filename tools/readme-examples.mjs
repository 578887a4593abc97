// Runs every ```bash block of the README, in order, in one bash against a running local stack (the
// journey, then the examples that use what it left in the shell), as a newcomer pastes them. The only
// change made: the README's http://localhost:8787 becomes the stack's own address. Dev tool, used by
// npm run e2e.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const TIMEOUT_MS = 120_000;

/** What each block must print somewhere in its output, in the README's order: their documented answers. */
const EXPECTED = [
  /"tier":"basic"/,
  /"status":"completed","reply":"[^"]+"/,
  /"tier":"pro"/,
  /^event: delta$/m,
  /"status":"cancelled"/,
  /^event: reply$/m,
  /"version":\{"index":2,"count":2/,
  /"systemInstruction":"Answer in bullet points.","model":"gemini-2.5-pro"/,
  /"highlights":\[\[\d+,\d+\]/,
  /gemini-backend-export-\d{4}-\d{2}-\d{2}\.json/,
  /<title>[^<]+<\/title>/,
  /\{"success":true,"message":"[^"]+","deleted":true\}/,
  /the token no longer works/,
];

export function readmeBashBlocks(markdown) {
  return [...markdown.matchAll(/^```bash\n([\s\S]*?)^```$/gm)].map((match) => match[1]);
}

/** Runs the blocks against `baseUrl`; resolves to { ok, failures, output }. */
export async function runReadmeExamples(baseUrl) {
  const blocks = readmeBashBlocks(readFileSync("README.md", "utf8"));
  const script = blocks.join("\n").replaceAll("http://localhost:8787", baseUrl.replace(/\/$/, ""));
  const cwd = mkdtempSync(join(tmpdir(), "gemini-backend-readme-"));
  try {
    const { code, output } = await new Promise((resolve) => {
      const child = spawn("bash", ["-c", script], { cwd, stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      child.stdout.on("data", (chunk) => {
        output += chunk;
      });
      child.stderr.on("data", (chunk) => {
        output += chunk;
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, output });
      });
    });
    const failures = [];
    if (code !== 0) failures.push(`bash exited with ${code}`);
    let from = 0;
    for (const expected of EXPECTED) {
      const found = expected.exec(output.slice(from));
      if (!found) failures.push(`no ${expected} after what came before`);
      else from += found.index + found[0].length;
    }
    return { ok: failures.length === 0, blocks: blocks.length, failures, output };
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}
