import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Wrangler reads wrangler.toml (and a developer's .dev.vars) once per test file and said "Using secrets
// defined in .dev.vars" each time; its warnings and errors still print. WRANGLER_LOG=log shows the rest.
process.env.WRANGLER_LOG ??= "warn";

export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          // Tests drive the consumer themselves (createMessageBatch → queue() → getQueueResult), so
          // background deliveries cannot race their assertions: sends go to a real local queue that
          // nothing consumes.
          queueProducers: { PROMPT_QUEUE: { queueName: "gemini-prompts-under-test" } },
          // An empty database beside DB, for the migration tests: old-shape rows, then the next migration.
          d1Databases: { DB: "gemini-backend-db", MIGRATION_DB: "migration-under-test" },
          bindings: {
            TEST_MIGRATIONS: migrations,
            // Deploys default to webhook delivery; tests read OTPs from the body unless they say otherwise.
            OTP_DELIVERY: "response",
            // uniquePhone() makes numbers without + on purpose; tests of the E.164-only default clear it.
            DEFAULT_CALLING_CODE: "91",
            PUBLIC_BASE_URL: "http://localhost",
            JWT_SECRET: "test-secret-for-vitest-only-0123456789abcdef",
            GEMINI_API_KEY: "",
            STRIPE_SECRET_KEY: "",
            STRIPE_WEBHOOK_SECRET: "",
            STRIPE_PRO_PLAN_PRICE_ID: "",
          },
        },
      }),
    ],
    test: {
      // The pool transforms every dependency file by file, and Stripe's ESM build ships a source map per
      // file that names TypeScript sources the package leaves out: Vite warned once per file (~220 lines).
      // Pre-bundled, Stripe is one module with one complete map, and loads faster.
      deps: { optimizer: { ssr: { enabled: true, include: ["stripe"] } } },
      // test/setup.ts keeps the Worker's JSON log lines out of the output: a test asserts the ones it
      // expects (test/logs.ts), and an error or warning it does not expect fails it.
      setupFiles: ["./test/setup.ts"],
    },
  };
});
