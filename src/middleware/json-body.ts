import { createMiddleware } from "hono/factory";
import { readBodyAtMost } from "../lib/body";
import { invalidJson, unsupportedMediaType } from "../lib/errors";

export const MAX_BODY_BYTES = 64 * 1024;
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/** Methods whose body, if a client sends one, is ignored (never read, never an error). */
const BODYLESS_METHODS = new Set(["GET", "HEAD", "OPTIONS", "DELETE"]);

/**
 * Guards every request body before routing: JSON only (415), at most 64 KiB (413, enforced while
 * streaming so a lying or missing Content-Length cannot get past it), and parseable (400 INVALID_JSON).
 * The checked text replaces the consumed stream, so validators and the webhook signature check
 * read exactly the bytes that were checked.
 */
export const jsonBody = createMiddleware(async (c, next) => {
  if (BODYLESS_METHODS.has(c.req.method)) return next();
  if (!c.req.raw.body || c.req.header("Content-Length") === "0") return next();
  const mediaType = (c.req.header("Content-Type") ?? "").split(";")[0]?.trim() ?? "";
  if (!JSON_MEDIA_TYPE.test(mediaType)) throw unsupportedMediaType();
  const bytes = await readBodyAtMost(c.req.raw, MAX_BODY_BYTES);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
    if (text.trim() !== "") JSON.parse(text);
  } catch {
    throw invalidJson();
  }
  c.req.raw = new Request(c.req.raw, { body: text });
  await next();
});

/**
 * For a route whose JSON body is optional: an empty body (some clients send `Content-Type:
 * application/json` with nothing) counts as no body at all, rather than as malformed JSON.
 */
export const emptyBodyIsNone = createMiddleware(async (c, next) => {
  if (c.req.raw.body && (await c.req.raw.clone().text()).trim() === "") {
    const headers = new Headers(c.req.raw.headers);
    headers.delete("Content-Type");
    headers.delete("Content-Length");
    c.req.raw = new Request(c.req.url, { method: c.req.method, headers });
  }
  await next();
});
