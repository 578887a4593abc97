const ALLOW_METHODS = "GET,POST,PATCH,DELETE,OPTIONS";
const ALLOW_HEADERS = "Authorization,Content-Type,Idempotency-Key,Last-Event-ID,X-D1-Bookmark";
const EXPOSE_HEADERS = [
  "X-Request-Id",
  "X-Cache",
  "X-D1-Bookmark",
  "Retry-After",
  "RateLimit-Limit",
  "RateLimit-Remaining",
  "RateLimit-Reset",
  "WWW-Authenticate",
].join(",");
const MAX_AGE_SECONDS = "600";

/** CORS_ORIGINS is "*" or a comma-separated list of exact origins; parsed once per value. */
let parsed: { configured: string; allowAll: boolean; origins: string[] } | undefined;
function parse(configured: string) {
  if (parsed?.configured !== configured) {
    const origins = configured
      .split(",")
      .map((origin) => origin.trim())
      .filter(Boolean);
    parsed = { configured, allowAll: origins.length === 0 || origins.includes("*"), origins };
  }
  return parsed;
}

/** What CORS allows a request: every origin, or only the configured ones (`allowOrigin` when it is one). */
export type CorsPolicy = { allowAll: boolean; allowOrigin: string | undefined };

export function corsPolicy(configured: string | undefined, origin: string | null): CorsPolicy {
  const { allowAll, origins } = parse(configured ?? "*");
  return { allowAll, allowOrigin: allowAll ? "*" : origin && origins.includes(origin) ? origin : undefined };
}

/** The answer to a CORS preflight (any OPTIONS request), before routing. */
export function preflight({ allowAll, allowOrigin }: CorsPolicy): Response {
  const headers = new Headers({
    "Access-Control-Allow-Methods": ALLOW_METHODS,
    "Access-Control-Allow-Headers": ALLOW_HEADERS,
    "Access-Control-Max-Age": MAX_AGE_SECONDS,
    "Access-Control-Expose-Headers": EXPOSE_HEADERS,
  });
  if (allowOrigin) headers.set("Access-Control-Allow-Origin", allowOrigin);
  if (!allowAll) headers.set("Vary", "Origin, Access-Control-Request-Headers");
  return new Response(null, { status: 204, headers });
}

/** The CORS headers of any other answer, errors included, set on it once it is made. */
export function setCorsHeaders(headers: Headers, { allowAll, allowOrigin }: CorsPolicy) {
  if (allowOrigin) headers.set("Access-Control-Allow-Origin", allowOrigin);
  headers.set("Access-Control-Expose-Headers", EXPOSE_HEADERS);
  if (!allowAll) headers.append("Vary", "Origin");
}
