// A local stand-in for the Gemini REST API (models/*:generateContent and models/*:streamGenerateContent),
// so the product's real @google/generative-ai code can run without a key or internet. Dev tool, not
// product code.
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { geminiBlocked, geminiChunk, geminiSseEvent } from "./gemini-chunks.mjs";
import { listen } from "./listen.mjs";

/** How many request timings `timings` and `GET /__timings` keep (most recent last). */
const MAX_TIMINGS = 1000;
/** The gap between chunks for a prompt containing "[slow]", long enough to press a "stop" button. */
const SLOW_GAP_MS = 400;
/** A "[drop]" stream is cut after this many chunks (every reply has at least 3). */
const DROP_AFTER_CHUNKS = 2;

const readJson = (req) =>
  new Promise((resolve) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(body || "{}"));
      } catch {
        resolve({});
      }
    });
  });

const send = (res, status, body) => {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Splits `text` by words (whitespace kept) into 5–8 pieces, fewer only for a text of fewer words. */
function splitIntoPieces(text) {
  const words = text.split(/(?<=\s)(?=\S)/);
  const count = Math.min(words.length, Math.min(8, Math.max(5, Math.ceil(words.length / 4))));
  return Array.from({ length: count }, (_, i) =>
    words.slice(Math.floor((i * words.length) / count), Math.floor(((i + 1) * words.length) / count)).join(""),
  );
}

const OVERLOADED = {
  error: { code: 503, message: "The model is overloaded. Please try again later.", status: "UNAVAILABLE" },
};

/**
 * Answers every generateContent call with a short reply that quotes the last user turn, after
 * `delayMs`. A prompt containing "[block]" is refused by the "safety filters"; "[overloaded]" gets 503.
 *
 * streamGenerateContent?alt=sse answers the same reply as server-sent events, split by words into
 * 5–8 chunks written `chunkGapMs` apart (the first one after `delayMs`); the last chunk carries
 * finishReason and usageMetadata. "[slow]" spaces the chunks 400 ms apart; "[drop]" cuts the connection
 * after 2 chunks, the first time that exact conversation is seen only (so a retry succeeds).
 *
 * Each answer is timed into `timings` ({ lastUserText, firstChunkAt, lastChunkAt }, ms since epoch,
 * most recent last, at most 1000), also served as JSON at `GET /__timings`.
 */
export function startGeminiStub({ port = 0, host = "127.0.0.1", delayMs = 0, chunkGapMs = 40 } = {}) {
  /** @type {{ lastUserText: string, firstChunkAt: number, lastChunkAt: number }[]} */
  const timings = [];
  const dropped = new Set();
  const record = (lastUserText, firstChunkAt, lastChunkAt) => {
    timings.push({ lastUserText, firstChunkAt, lastChunkAt });
    if (timings.length > MAX_TIMINGS) timings.splice(0, timings.length - MAX_TIMINGS);
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://stub");
    if (req.method === "GET" && url.pathname === "/__timings") return send(res, 200, timings);
    const match = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(url.pathname);
    if (req.method !== "POST" || !match) {
      return send(res, 404, { error: { code: 404, message: "Not found", status: "NOT_FOUND" } });
    }
    if (!req.headers["x-goog-api-key"]) {
      return send(res, 403, {
        error: { code: 403, message: "Method doesn't allow unregistered callers.", status: "PERMISSION_DENIED" },
      });
    }
    const model = match[1];
    const streaming = match[2] === "streamGenerateContent";
    // The client may go away at any point (a stopped reply, a timeout): from then on, write nothing.
    let gone = false;
    res.on("close", () => {
      if (!res.writableFinished) gone = true;
    });
    res.on("error", () => {
      gone = true;
    });

    const body = await readJson(req);
    const turns = Array.isArray(body.contents) ? body.contents : [];
    const last =
      turns
        .at(-1)
        ?.parts?.map((part) => part.text ?? "")
        .join("") ?? "";
    if (delayMs > 0) await sleep(delayMs);
    if (gone) return;
    if (last.includes("[overloaded]")) return send(res, 503, OVERLOADED);

    const instruction = (body.systemInstruction?.parts ?? []).map((part) => part.text ?? "").join("");
    // A title request (a system instruction asking for a title) gets a title: the first words the user said.
    const title = /\btitle\b/i.test(instruction)
      ? (/^User: (.*)$/m.exec(last)?.[1] ?? last).split(/\s+/).slice(0, 5).join(" ")
      : undefined;
    const text =
      title ??
      `(offline Gemini stub, ${model}, ${turns.length} turn${turns.length === 1 ? "" : "s"}) You said: ${last}`;
    const promptTokenCount = Math.ceil(JSON.stringify(turns).length / 4);
    const candidatesTokenCount = Math.ceil(text.length / 4);
    const usage = { promptTokenCount, candidatesTokenCount };
    const blocked = () => geminiBlocked({ model, promptTokenCount: 4 });

    if (!streaming) {
      const now = Date.now();
      record(last, now, now);
      if (last.includes("[block]")) return send(res, 200, blocked());
      return send(res, 200, geminiChunk(text, { model, finishReason: "STOP", usage }));
    }

    const chunks = last.includes("[block]")
      ? [blocked()]
      : splitIntoPieces(text).map((piece, i, pieces) =>
          geminiChunk(piece, { model, ...(i === pieces.length - 1 && { finishReason: "STOP", usage }) }),
        );
    // Without alt=sse the real API answers the same chunks as one JSON array.
    if (url.searchParams.get("alt") !== "sse") {
      const now = Date.now();
      record(last, now, now);
      return send(res, 200, chunks);
    }

    const conversation = `${model}\n${JSON.stringify(turns)}`;
    const drop = last.includes("[drop]") && !dropped.has(conversation);
    if (drop) dropped.add(conversation);
    const gapMs = last.includes("[slow]") ? SLOW_GAP_MS : chunkGapMs;
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    let firstChunkAt = 0;
    let lastChunkAt = 0;
    for (const [i, chunk] of chunks.entries()) {
      if (i > 0 && gapMs > 0) await sleep(gapMs);
      if (gone || res.destroyed) break;
      if (drop && i === DROP_AFTER_CHUNKS) {
        res.socket?.destroy();
        break;
      }
      res.write(geminiSseEvent(chunk));
      lastChunkAt = Date.now();
      firstChunkAt ||= lastChunkAt;
    }
    if (firstChunkAt) record(last, firstChunkAt, lastChunkAt);
    if (!gone && !res.destroyed) res.end();
  });
  return listen(server, port, host).then((listening) => ({ ...listening, timings }));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const stub = await startGeminiStub({
    port: Number(process.env.PORT ?? 8788),
    delayMs: Number(process.env.DELAY_MS ?? 0),
    chunkGapMs: Number(process.env.CHUNK_GAP_MS ?? 40),
  });
  console.log(`Gemini stub on ${stub.url}`);
}
