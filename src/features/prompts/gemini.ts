import {
  GoogleGenerativeAI,
  GoogleGenerativeAIAbortError,
  GoogleGenerativeAIFetchError,
  GoogleGenerativeAIResponseError,
} from "@google/generative-ai";

/**
 * The only module that knows the Gemini SDK: swap the SDK here and nothing else changes.
 */
export const DEFAULT_GEMINI_MODEL = "gemini-2.5-flash";
const REQUEST_TIMEOUT_MS = 25_000;

export type ChatTurn = { role: "user" | "model"; text: string };
export type GeminiReply = { text: string; promptTokens: number | null; completionTokens: number | null };

/** A failed generation. `userMessage` is ours and safe to show; upstream text stays in `detail` (logs only). */
export class AiFailure extends Error {
  constructor(
    readonly retryable: boolean,
    readonly userMessage: string,
    readonly detail: string,
  ) {
    super(detail);
    this.name = "AiFailure";
  }
}

export async function generateReply(env: Env, turns: ChatTurn[]): Promise<GeminiReply> {
  if (!env.GEMINI_API_KEY) {
    throw new AiFailure(
      false,
      "AI is not configured on this server, so this prompt could not be answered.",
      "GEMINI_API_KEY is not set",
    );
  }
  const model = new GoogleGenerativeAI(env.GEMINI_API_KEY).getGenerativeModel(
    { model: env.GEMINI_MODEL || DEFAULT_GEMINI_MODEL },
    { baseUrl: env.GEMINI_BASE_URL || undefined, timeout: REQUEST_TIMEOUT_MS },
  );
  try {
    const result = await model.generateContent({
      contents: turns.map((turn) => ({ role: turn.role, parts: [{ text: turn.text }] })),
    });
    // text() throws GoogleGenerativeAIResponseError when the prompt or the answer was blocked.
    const text = result.response.text();
    if (!text.trim())
      throw new AiFailure(false, "The AI returned an empty reply. Try rephrasing the prompt.", "empty reply");
    const usage = result.response.usageMetadata;
    return {
      text,
      promptTokens: usage?.promptTokenCount ?? null,
      completionTokens: usage?.candidatesTokenCount ?? null,
    };
  } catch (err) {
    throw classifyFailure(err);
  }
}

function classifyFailure(err: unknown): AiFailure {
  if (err instanceof AiFailure) return err;
  const detail = err instanceof Error ? err.message : String(err);
  if (err instanceof GoogleGenerativeAIResponseError) {
    return new AiFailure(false, "The AI declined to answer this prompt because of its safety filters.", detail);
  }
  if (err instanceof GoogleGenerativeAIAbortError) {
    return new AiFailure(true, "The AI took too long to answer. Please retry this prompt.", detail);
  }
  if (err instanceof GoogleGenerativeAIFetchError) {
    const status = err.status ?? 0;
    if (status === 429 || status >= 500) {
      return new AiFailure(true, "The AI service is busy right now. Please retry this prompt.", detail);
    }
    if (status === 401 || status === 403) {
      return new AiFailure(
        false,
        "The AI service rejected this server's credentials, so the prompt could not be answered.",
        detail,
      );
    }
    return new AiFailure(false, "The AI service could not process this prompt.", detail);
  }
  // Network failures surface as plain SDK errors: worth another try.
  return new AiFailure(true, "The AI service could not be reached. Please retry this prompt.", detail);
}
