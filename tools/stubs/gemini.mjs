// A local stand-in for the Gemini REST API (models/*:generateContent), so the product's real
// @google/generative-ai code can run without a key or internet. Dev tool, not product code.
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { listen } from "./listen.mjs";

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

/**
 * Answers every generateContent call with a short reply that quotes the last user turn, after
 * `delayMs`. A prompt containing "[block]" is refused by the "safety filters"; "[overloaded]" gets 503.
 */
export function startGeminiStub({ port = 0, host = "127.0.0.1", delayMs = 0 } = {}) {
  const server = createServer(async (req, res) => {
    const match = /^\/v1beta\/models\/([^/:]+):generateContent$/.exec(new URL(req.url, "http://stub").pathname);
    if (req.method !== "POST" || !match) {
      return send(res, 404, { error: { code: 404, message: "Not found", status: "NOT_FOUND" } });
    }
    if (!req.headers["x-goog-api-key"]) {
      return send(res, 403, {
        error: { code: 403, message: "Method doesn't allow unregistered callers.", status: "PERMISSION_DENIED" },
      });
    }
    const body = await readJson(req);
    const turns = Array.isArray(body.contents) ? body.contents : [];
    const last =
      turns
        .at(-1)
        ?.parts?.map((part) => part.text ?? "")
        .join("") ?? "";
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    if (last.includes("[overloaded]")) {
      return send(res, 503, {
        error: { code: 503, message: "The model is overloaded. Please try again later.", status: "UNAVAILABLE" },
      });
    }
    if (last.includes("[block]")) {
      return send(res, 200, {
        promptFeedback: { blockReason: "SAFETY" },
        usageMetadata: { promptTokenCount: 4, totalTokenCount: 4 },
      });
    }
    const text = `(offline Gemini stub, ${match[1]}, ${turns.length} turn${turns.length === 1 ? "" : "s"}) You said: ${last}`;
    const promptTokenCount = Math.ceil(JSON.stringify(turns).length / 4);
    const candidatesTokenCount = Math.ceil(text.length / 4);
    send(res, 200, {
      candidates: [{ content: { role: "model", parts: [{ text }] }, finishReason: "STOP", index: 0 }],
      usageMetadata: {
        promptTokenCount,
        candidatesTokenCount,
        totalTokenCount: promptTokenCount + candidatesTokenCount,
      },
      modelVersion: match[1],
    });
  });
  return listen(server, port, host);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const stub = await startGeminiStub({
    port: Number(process.env.PORT ?? 8788),
    delayMs: Number(process.env.DELAY_MS ?? 0),
  });
  console.log(`Gemini stub on ${stub.url}`);
}
