// Starts the offline stack: the Gemini and Stripe stubs plus `wrangler dev` pointed at them.
// Used by `npm run dev:offline` and `npm run e2e`. Dev tool, not product code.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { applyLocalMigrations } from "../scripts/migrate-local.mjs";
import { startGeminiStub } from "./stubs/gemini.mjs";
import { startStripeStub } from "./stubs/stripe.mjs";

export const OFFLINE_SECRETS = {
  GEMINI_API_KEY: "offline-gemini-key",
  STRIPE_SECRET_KEY: "sk_test_offline",
  STRIPE_WEBHOOK_SECRET: "whsec_offline_stub",
  STRIPE_PRO_PLAN_PRICE_ID: "price_offline_pro",
};

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilUp(url, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with code ${child.exitCode}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) return;
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  throw new Error(`wrangler dev did not answer on ${url} within ${timeoutMs / 1000} s`);
}

/**
 * @param {{ port?: number, geminiPort?: number, stripePort?: number, persistTo?: string,
 *   geminiDelayMs?: number, quiet?: boolean, extraVars?: Record<string, string> }} options
 */
export async function startLocalStack(options = {}) {
  const port = options.port ?? (await freePort());
  const baseUrl = `http://127.0.0.1:${port}`;
  const gemini = await startGeminiStub({ port: options.geminiPort ?? 0, delayMs: options.geminiDelayMs ?? 0 });
  const stripe = await startStripeStub({
    port: options.stripePort ?? 0,
    webhookUrl: `${baseUrl}/api/billing/webhook/stripe`,
    webhookSecret: OFFLINE_SECRETS.STRIPE_WEBHOOK_SECRET,
  });
  // Silent when there is nothing to apply (dev:offline's setup step has just applied them).
  applyLocalMigrations({ persistTo: options.persistTo, announce: false });

  const vars = {
    ...OFFLINE_SECRETS,
    // The mocked SMS: OTPs come back in the body, as the Postman collection and the playground expect.
    OTP_DELIVERY: "response",
    // Numbers without + (the original collection's 9876543210) are read as Indian numbers, as in .dev.vars.
    DEFAULT_CALLING_CODE: "91",
    PUBLIC_BASE_URL: baseUrl,
    GEMINI_BASE_URL: gemini.url,
    STRIPE_API_BASE: stripe.url,
    ...options.extraVars,
  };
  const args = [
    "dev",
    "--test-scheduled",
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--inspector-port",
    String(await freePort()),
    ...(options.persistTo ? ["--persist-to", options.persistTo] : []),
  ];
  for (const [name, value] of Object.entries(vars)) args.push("--var", `${name}:${value}`);
  const wrangler = spawn("wrangler", args, {
    stdio: options.quiet ? ["ignore", "pipe", "pipe"] : "inherit",
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" },
    detached: process.platform !== "win32",
    shell: process.platform === "win32",
  });
  // Quiet runs keep what wrangler printed (the last MiB), so a check can look for uncaught errors;
  // its errors still go to stderr.
  let output = "";
  const keep = (chunk) => {
    output = (output + chunk.toString()).slice(-1_048_576);
  };
  wrangler.stdout?.on("data", keep);
  wrangler.stderr?.on("data", (chunk) => {
    keep(chunk);
    process.stderr.write(chunk);
  });

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (wrangler.exitCode === null) {
      try {
        process.kill(process.platform === "win32" ? wrangler.pid : -wrangler.pid, "SIGTERM");
      } catch {}
      await new Promise((resolve) => {
        const timer = setTimeout(() => {
          try {
            process.kill(-wrangler.pid, "SIGKILL");
          } catch {}
          resolve();
        }, 5_000);
        wrangler.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await Promise.all([gemini.close(), stripe.close()]);
  };

  try {
    await waitUntilUp(`${baseUrl}/`, wrangler, 90_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { baseUrl, gemini, stripe, stop, output: () => output };
}
