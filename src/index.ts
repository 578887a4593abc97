import { createApp } from "./app";
import { consumePromptBatch, type PromptJob } from "./features/prompts/prompts.queue";

export { ChatroomHub } from "./features/live/chatroom-hub";

const app = createApp();

export default {
  fetch: app.fetch,
  queue: (batch, env) => consumePromptBatch(batch, env),
} satisfies ExportedHandler<Env, PromptJob>;
