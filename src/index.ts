import { createApp } from "./app";
import { consumePromptBatch, type PromptJob } from "./features/prompts/prompts.queue";

const app = createApp();

export default {
  fetch: app.fetch,
  queue: (batch, env) => consumePromptBatch(batch, env),
} satisfies ExportedHandler<Env, PromptJob>;
