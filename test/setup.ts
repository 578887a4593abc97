import { applyD1Migrations, env } from "cloudflare:test";
import { loadRouters } from "../src/app";
import { captureLogs } from "./logs";

// First, so nothing the Worker logs while loading reaches the output unasked.
captureLogs();

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
// The Worker loads each part of the API on its first request for it (src/index.ts); loaded here first, the
// modules' transform by the test runner is not charged to whichever test makes that request.
await loadRouters("everything");
