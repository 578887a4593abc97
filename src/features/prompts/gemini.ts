import {
  GoogleGenerativeAI,
  GoogleGenerativeAIAbortError,
  GoogleGenerativeAIFetchError,
  GoogleGenerativeAIResponseError,
} from "@google/generative-ai";
import { defaultModelOf } from "../models/models";

/**
 * The only module that knows the Gemini SDK: swap the SDK here and nothing else changes.
 */
export type ChatTurn = { role: "user" | "model"; text: string };
export type GeminiReply = {
  text: string;
  promptTokens: number | null;
  completionTokens: number | null;
  /** Thinking tokens (usageMetadata.thoughtsTokenCount), when the model reports them. */
  thoughtTokens: number | null;
  /** The model that wrote it. */
  model: string;
};

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

/**
 * Our own time limits for a streamed answer. The SDK's `timeout` option covers the whole stream and its
 * timer is never cleared, so a long answer would be cut off; these only fire while Gemini is silent.
 */
export const FIRST_CHUNK_TIMEOUT_MS = 30_000;
export const IDLE_GAP_TIMEOUT_MS = 30_000;

export type StreamOptions = {
  /** Called with each piece of text as it arrives, in order. */
  onText: (piece: string) => void;
  /** Aborting it stops the stream; the call then rejects. */
  signal?: AbortSignal;
  firstChunkTimeoutMs?: number;
  idleGapTimeoutMs?: number;
  /** A model id; the server's default (the first of GEMINI_MODELS) when absent. */
  model?: string;
  /** Sent as Gemini's systemInstruction, not as a turn. */
  systemInstruction?: string;
};

/**
 * Streams Gemini's answer to `turns` (`:streamGenerateContent?alt=sse`), handing each piece of text to
 * `onText` as it arrives, and resolves to the whole reply. Failures reject with an AiFailure.
 */
export async function streamReply(env: Env, turns: ChatTurn[], options: StreamOptions): Promise<GeminiReply> {
  if (!env.GEMINI_API_KEY) {
    throw new AiFailure(
      false,
      "AI is not configured on this server, so this prompt could not be answered.",
      "GEMINI_API_KEY is not set",
    );
  }
  const modelName = options.model || defaultModelOf(env);
  const model = new GoogleGenerativeAI(env.GEMINI_API_KEY).getGenerativeModel(
    {
      model: modelName,
      ...(options.systemInstruction ? { systemInstruction: options.systemInstruction } : {}),
    },
    { baseUrl: env.GEMINI_BASE_URL || undefined },
  );
  const controller = new AbortController();
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const armTimer = (ms: number) => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, ms);
  };
  const stopFromOutside = () => controller.abort();
  options.signal?.addEventListener("abort", stopFromOutside);
  armTimer(options.firstChunkTimeoutMs ?? FIRST_CHUNK_TIMEOUT_MS);
  try {
    const result = await model.generateContentStream(
      { contents: turns.map((turn) => ({ role: turn.role, parts: [{ text: turn.text }] })) },
      { signal: controller.signal },
    );
    // The SDK also aggregates the stream into `response`; we read the stream only, so keep that
    // promise from surfacing as an unhandled rejection when the stream fails or is stopped.
    result.response.catch(() => {});
    let text = "";
    let usage: { promptTokenCount?: number; candidatesTokenCount?: number; thoughtsTokenCount?: number } | undefined;
    for await (const chunk of result.stream) {
      armTimer(options.idleGapTimeoutMs ?? IDLE_GAP_TIMEOUT_MS);
      // text() throws GoogleGenerativeAIResponseError when the prompt or the answer was blocked.
      const piece = chunk.text();
      if (chunk.usageMetadata) usage = chunk.usageMetadata;
      if (piece) {
        text += piece;
        options.onText(piece);
      }
    }
    if (!text.trim())
      throw new AiFailure(false, "The AI returned an empty reply. Try rephrasing the prompt.", "empty reply");
    return {
      text,
      promptTokens: usage?.promptTokenCount ?? null,
      completionTokens: usage?.candidatesTokenCount ?? null,
      thoughtTokens: usage?.thoughtsTokenCount ?? null,
      model: modelName,
    };
  } catch (err) {
    if (timedOut) {
      throw new AiFailure(true, "The AI took too long to answer. Please retry this prompt.", "stream timed out");
    }
    throw classifyFailure(err);
  } finally {
    if (timer) clearTimeout(timer);
    options.signal?.removeEventListener("abort", stopFromOutside);
  }
}

/** How long the title of a chatroom may take before it is given up (the chatroom then stays untitled). */
export const TITLE_TIMEOUT_MS = 10_000;

const TITLE_INSTRUCTION =
  "You name chat conversations. Answer with a short title for the conversation the user gives you: " +
  "at most six words, one line, in the conversation's language, no quotes, no final punctuation.";

/**
 * A short title for a conversation (not streamed), by the default model. Resolves to the model's raw
 * text; failures reject with an AiFailure.
 */
export async function generateTitle(env: Env, conversation: string): Promise<string> {
  if (!env.GEMINI_API_KEY) throw new AiFailure(false, "AI is not configured", "GEMINI_API_KEY is not set");
  const model = new GoogleGenerativeAI(env.GEMINI_API_KEY).getGenerativeModel(
    { model: defaultModelOf(env), systemInstruction: TITLE_INSTRUCTION },
    { baseUrl: env.GEMINI_BASE_URL || undefined },
  );
  try {
    const result = await model.generateContent(
      { contents: [{ role: "user", parts: [{ text: conversation }] }] },
      { timeout: TITLE_TIMEOUT_MS },
    );
    return result.response.text();
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
  // Network failures, and a stream cut off part-way ("Error reading from the stream"), surface as
  // plain SDK errors: worth another try.
  return new AiFailure(true, "The AI service could not be reached. Please retry this prompt.", detail);
}
