import { payloadTooLarge } from "./errors";

/**
 * How much of an over-limit body is read and thrown away before the 413 goes out, and for how long.
 * Answering while a body is half read makes `wrangler dev`'s proxy drop the connection and exit
 * (docs/wrangler-dev-unread-body.md); reading the rest is cheap, and past these bounds we stop.
 */
const DISCARD_MAX_BYTES = 8 * 1024 * 1024;
const DISCARD_MAX_MS = 2_000;

/**
 * The request's body, at most `limit` bytes: 413 when `Content-Length` announces more (nothing read),
 * or when a streamed body (chunked, or with a lying length) goes past the limit.
 */
export async function readBodyAtMost(request: Request, limit: number): Promise<Uint8Array> {
  if (!request.body) return new Uint8Array();
  if (Number(request.headers.get("Content-Length")) > limit) throw payloadTooLarge(limit);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await discardRest(reader);
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

/** Reads and drops what is left of a body, within DISCARD_MAX_BYTES and DISCARD_MAX_MS; then cancels. */
async function discardRest(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), DISCARD_MAX_MS);
  });
  try {
    for (let discarded = 0; discarded <= DISCARD_MAX_BYTES; ) {
      const next = await Promise.race([reader.read(), timedOut]);
      if (next === "timeout") break;
      if (next.done) return;
      discarded += next.value.byteLength;
    }
    await reader.cancel().catch(() => {});
  } catch {
    // The client went away: nothing left to drain.
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
