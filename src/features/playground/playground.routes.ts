import { Hono } from "hono";
import { notFound } from "../../lib/errors";
import type { AppEnv } from "../../types";

/**
 * The playground loads only its own files and talks only to this API: no inline script or style,
 * nothing from another host, no framing. Its forms never submit natively (the script sends JSON), so
 * a password can never end up in a URL.
 */
export const PLAYGROUND_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * The page's files live in public/playground/ (Workers Static Assets). wrangler.toml sets
 * `run_worker_first = true`, so they are only ever reached through here: every file gets the API's
 * security headers plus the CSP above, and a missing one the usual JSON 404.
 */
export const playgroundRoutes = new Hono<AppEnv>();

playgroundRoutes.get("/*", async (c) => {
  const url = new URL(c.req.url);
  url.pathname = /^\/playground\/?$/.test(url.pathname) ? "/playground/index.html" : url.pathname;
  // The browser's own request (If-None-Match and all), so unchanged files answer 304.
  const asset = await c.env.ASSETS.fetch(new Request(url, c.req.raw));
  if (asset.status === 404) throw notFound("Page");
  const response = new Response(asset.body, asset);
  response.headers.set("Content-Security-Policy", PLAYGROUND_CSP);
  return response;
});
