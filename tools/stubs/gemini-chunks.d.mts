export type GeminiUsage = { promptTokenCount: number; candidatesTokenCount: number; thoughtsTokenCount?: number };

export function geminiChunk(
  text: string,
  options?: { model?: string; finishReason?: string; usage?: GeminiUsage },
): Record<string, unknown>;

export function geminiBlocked(options: { model?: string; promptTokenCount: number }): Record<string, unknown>;

export function geminiSseEvent(chunk: unknown): string;
