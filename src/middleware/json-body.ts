import { createMiddleware } from "hono/factory";
import { invalidJson, payloadTooLarge, unsupportedMediaType } from "../lib/errors";

export const MAX_BODY_BYTES = 64 * 1024;
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/**
 * Guards every request body before routing: JSON only (415), at most 64 KiB (413, enforced while
 * streaming so a lying or missing Content-Length cannot get past it), and parseable (400 INVALID_JSON).
 * The checked text replaces the consumed stream, so validators and the webhook signature check
 * read exactly the bytes that were checked.
 */
export const jsonBody = createMiddleware(async (c, next) => {
  const stream = c.req.raw.body;
  if (!stream || c.req.header("Content-Length") === "0") return next();
  const mediaType = (c.req.header("Content-Type") ?? "").split(";")[0]?.trim() ?? "";
  if (!JSON_MEDIA_TYPE.test(mediaType)) throw unsupportedMediaType();
  if (Number(c.req.header("Content-Length")) > MAX_BODY_BYTES) throw payloadTooLarge(MAX_BODY_BYTES);
  const bytes = await readAtMost(stream, MAX_BODY_BYTES);
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

export async function readAtMost(stream: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw payloadTooLarge(limit);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
