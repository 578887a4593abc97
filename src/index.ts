import { createApp } from "./app";
import { runHousekeeping } from "./features/housekeeping/housekeeping";
import { consumePromptBatch, type PromptJob } from "./features/prompts/prompts.queue";

export { ChatroomHub } from "./features/live/chatroom-hub";

const app = createApp();

export default {
  fetch: app.fetch,
  queue: (batch, env) => consumePromptBatch(batch, env),
  scheduled: (controller, env, ctx) => ctx.waitUntil(runHousekeeping(env, new Date(controller.scheduledTime))),
} satisfies ExportedHandler<Env, PromptJob>;
