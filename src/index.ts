import type { createApp } from "./app";
import type { PromptJob } from "./features/prompts/prompts.queue";
import { canonicalPath } from "./lib/canonical-path";
import { type RouteSet, routeSetOf } from "./route-sets";

export { ChatroomHub } from "./features/live/chatroom-hub";

type App = ReturnType<typeof createApp>;

/**
 * Nothing is built at startup: each part of the API (account, chat, billing, playground; the OpenAPI
 * document and /docs hold them all) is loaded, its routes and request schemas built, when the first
 * request for it comes, and kept for the isolate's life. A bundled dynamic import() is evaluated only
 * when called, so a request pays for the part it uses, once; later requests reach their part's app with
 * no await in between.
 */
const ready = new Map<RouteSet, App>();
const loading = new Map<RouteSet, Promise<App>>();

function load(set: RouteSet): Promise<App> {
  let app = loading.get(set);
  if (!app) {
    app = import("./app").then(async ({ createApp, loadRouters }) => {
      const built = createApp(await loadRouters(set));
      ready.set(set, built);
      return built;
    });
    // A part whose building failed is tried again by the next request (a module that threw while it was
    // first evaluated stays failed: esbuild marks it evaluated first).
    app.catch(() => loading.delete(set));
    loading.set(set, app);
  }
  return app;
}

export default {
  fetch: (request, env, ctx) => {
    const set = routeSetOf(canonicalPath(request));
    const app = ready.get(set);
    if (app) return app.fetch(request, env, ctx);
    return load(set).then(
      (loaded) => loaded.fetch(request, env, ctx),
      (err) => {
        // The part could not be built: the contract's 500, not the runtime's bare one.
        console.error(
          JSON.stringify({ level: "error", message: "part failed to load", part: set, error: String(err) }),
        );
        return Response.json(
          { success: false, message: "Something went wrong on our side", error: { code: "INTERNAL" } },
          { status: 500 },
        );
      },
    );
  },
  queue: async (batch, env) => (await import("./features/prompts/prompts.queue")).consumePromptBatch(batch, env),
  scheduled: async (controller, env, ctx) => {
    const { runHousekeeping } = await import("./features/housekeeping/housekeeping");
    ctx.waitUntil(runHousekeeping(env, new Date(controller.scheduledTime)));
  },
} satisfies ExportedHandler<Env, PromptJob>;
