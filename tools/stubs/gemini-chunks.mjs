// Gemini REST API answers shaped as Google writes them, shared by the Gemini stub server (Node) and the
// tests' fetch stubs (workerd): a generateContent answer is one chunk, a streamGenerateContent answer
// several, each one server-sent event with alt=sse.

const SAFETY_RATINGS = [{ category: "HARM_CATEGORY_HARASSMENT", probability: "NEGLIGIBLE" }];

/**
 * One chunk of a reply carrying `text`. The last chunk of a reply also carries `finishReason` and `usage`
 * (as usageMetadata, totalTokenCount added).
 */
export function geminiChunk(text, { model = "gemini-2.5-flash", finishReason, usage } = {}) {
  return {
    candidates: [
      {
        content: { parts: [{ text }], role: "model" },
        ...(finishReason && { finishReason }),
        index: 0,
        safetyRatings: SAFETY_RATINGS,
      },
    ],
    ...(usage && {
      usageMetadata: {
        ...usage,
        totalTokenCount: usage.promptTokenCount + usage.candidatesTokenCount + (usage.thoughtsTokenCount ?? 0),
      },
    }),
    modelVersion: model,
  };
}

/** A prompt refused by the safety filters: no candidates, only promptFeedback. */
export function geminiBlocked({ model = "gemini-2.5-flash", promptTokenCount }) {
  return {
    promptFeedback: {
      blockReason: "SAFETY",
      safetyRatings: [{ category: "HARM_CATEGORY_DANGEROUS_CONTENT", probability: "HIGH", blocked: true }],
    },
    usageMetadata: { promptTokenCount, totalTokenCount: promptTokenCount },
    modelVersion: model,
  };
}

/** One server-sent event as the streaming API writes it: `data: <one JSON line>` and a CRLF blank line. */
export const geminiSseEvent = (chunk) => `data: ${JSON.stringify(chunk)}\r\n\r\n`;
