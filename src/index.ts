import type { createApp, RouteSet } from "./app";
import type { PromptJob } from "./features/prompts/prompts.queue";
import { canonicalPath } from "./lib/canonical-path";

export { ChatroomHub } from "./features/live/chatroom-hub";

type App = ReturnType<typeof createApp>;

/**
 * Nothing is built at startup: each part of the API (account, chat, billing, playground; the OpenAPI
 * document and /docs hold them all) is loaded, its routes and request schemas built, when the first
 * request for it comes, and kept for the isolate's life. A bundled dynamic import() is evaluated only
 * when called, so a request pays for the part it uses, once.
 */
const apps = new Map<RouteSet, Promise<App>>();

function appFor(set: RouteSet): Promise<App> {
  let app = apps.get(set);
  if (!app) {
    app = import("./app").then(async ({ createApp, loadRouters }) => createApp(await loadRouters(set)));
    // A part that failed to load is tried again by the next request, not cached broken.
    app.catch(() => apps.delete(set));
    apps.set(set, app);
  }
  return app;
}

export default {
  fetch: async (request, env, ctx) => {
    const { routeSetOf } = await import("./app");
    return (await appFor(routeSetOf(canonicalPath(request)))).fetch(request, env, ctx);
  },
  queue: async (batch, env) => (await import("./features/prompts/prompts.queue")).consumePromptBatch(batch, env),
  scheduled: async (controller, env, ctx) => {
    const { runHousekeeping } = await import("./features/housekeeping/housekeeping");
    ctx.waitUntil(runHousekeeping(env, new Date(controller.scheduledTime)));
  },
} satisfies ExportedHandler<Env, PromptJob>;
