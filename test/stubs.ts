import { vi } from "vitest";

/** The host the Gemini SDK calls by default; tests point GEMINI_BASE_URL nowhere else. */
export const GEMINI_HOST = "generativelanguage.googleapis.com";

export type GeminiCall = {
  url: string;
  apiKey: string | null;
  body: { contents: { role: string; parts: { text: string }[] }[] };
};
type GeminiAnswer = Response | "network-error";

/** A generateContent answer shaped exactly like the Gemini REST API's. */
export function geminiText(text: string, usage = { promptTokenCount: 11, candidatesTokenCount: 7 }) {
  return new Response(
    JSON.stringify({
      candidates: [
        {
          content: { parts: [{ text }], role: "model" },
          finishReason: "STOP",
          index: 0,
          safetyRatings: [{ category: "HARM_CATEGORY_HARASSMENT", probability: "NEGLIGIBLE" }],
        },
      ],
      usageMetadata: { ...usage, totalTokenCount: usage.promptTokenCount + usage.candidatesTokenCount },
      modelVersion: "gemini-2.5-flash",
    }),
    { status: 200, headers: { "Content-Type": "application/json" } },
  );
}

export function geminiError(status: number, message: string, reason: string) {
  return new Response(JSON.stringify({ error: { code: status, message, status: reason } }), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

export const geminiOverloaded = () =>
  geminiError(503, "The model is overloaded. Please try again later.", "UNAVAILABLE");

export function geminiPromptBlocked() {
  return new Response(
    JSON.stringify({
      promptFeedback: {
        blockReason: "SAFETY",
        safetyRatings: [{ category: "HARM_CATEGORY_DANGEROUS_CONTENT", probability: "HIGH", blocked: true }],
      },
      usageMetadata: { promptTokenCount: 9, totalTokenCount: 9 },
      modelVersion: "gemini-2.5-flash",
    }),
    { status: 200, headers: { "Content-Type": "application/json" } },
  );
}

/**
 * Replaces `fetch` for the Gemini host only; each call gets the next answer from `answers` (the last
 * one repeats). Any other host fails the test.
 */
export function stubGemini(...answers: (() => GeminiAnswer)[]) {
  const calls: GeminiCall[] = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.host !== GEMINI_HOST) throw new Error(`unexpected outbound request to ${url.host}`);
    calls.push({ url: request.url, apiKey: request.headers.get("x-goog-api-key"), body: await request.json() });
    const answer = (answers[calls.length - 1] ?? answers.at(-1))?.();
    if (!answer || answer === "network-error") throw new TypeError("Network connection lost.");
    return answer;
  });
  return calls;
}
