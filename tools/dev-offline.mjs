// npm run dev:offline — the API on http://localhost:8787 with Gemini and Stripe replaced by local stubs,
// so every endpoint works without keys or internet. Open a subscribe `url` in the browser to "pay".
import { startLocalStack } from "./local-stack.mjs";

const stack = await startLocalStack({ port: 8787, geminiPort: 8788, stripePort: 12111 });
console.log(
  `\nOffline stack ready: API ${stack.baseUrl}  ·  Gemini stub ${stack.gemini.url}  ·  Stripe stub ${stack.stripe.url}`,
);
console.log("Press Ctrl+C to stop.\n");
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    await stack.stop();
    process.exit(0);
  });
}
