import type { ChatroomDto } from "../chatrooms";
import type { PromptDto, UsageDto } from "../messages";

/** The events of the "Live replies" contract, with the data each carries. */
export type LiveEventData = {
  prompt: { prompt: PromptDto; usage?: UsageDto };
  delta: { promptId: string; text: string };
  retrying: { promptId: string; attempt: number; retryInSeconds: number };
  reply: { prompt: PromptDto };
  reset: Record<string, never>;
  deleted: { chatroomId: string };
  revoked: { reason: RevokedReason };
  branch: { activeLeafId: string | null };
  chatroom: { chatroom: ChatroomDto };
};

/** Why a stream's token or ticket stopped working (the `revoked` event's `reason`). */
export type RevokedReason = "logout" | "logout-all" | "password-changed" | "password-reset";

/** Whose token or ticket opened a stream: the hub keeps it with each subscriber. */
export type HubSubscriber = { userId: string; tokenVersion: number; tokenId?: string };

/**
 * A revocation the hub is told of: one token and its tickets (`tokenId`, logout), or every token of the
 * user below `belowVersion` (logout-all, password change or reset).
 */
export type StreamRevocation = { userId: string; reason: RevokedReason } & (
  | { tokenId: string; belowVersion?: undefined }
  | { belowVersion: number; tokenId?: undefined }
);

/** Whether a revocation covers a subscriber's token or ticket. */
export function subscriberCovered(revocation: StreamRevocation, subscriber: Partial<HubSubscriber>): boolean {
  if (subscriber.userId !== revocation.userId) return false;
  if (revocation.tokenId !== undefined) return subscriber.tokenId === revocation.tokenId;
  return subscriber.tokenVersion === undefined || subscriber.tokenVersion < revocation.belowVersion;
}

export type LiveEventName = keyof LiveEventData;

/** One event as SSE writes it (`id:`, `event:`, `data:`) and as a WebSocket message carries it. */
export type LiveEvent = { [K in LiveEventName]: { id: string; event: K; data: LiveEventData[K] } }[LiveEventName];

/**
 * What the hub sends a Worker that subscribed to one prompt, before any event: where the chatroom's
 * event log stands and what the hub knows of the prompt, so the Worker misses nothing in between.
 */
export type PromptSnapshot = {
  kind: "snapshot";
  head: string;
  /** The text published for the prompt so far (while it is being written). */
  text: string;
  /** The prompt as the hub last published it settled, if it has. */
  settled: PromptDto | null;
};

/** Sent to a Worker's subscription after the replay it asked for: what follows is live. */
export type CaughtUp = { kind: "caught-up" };

export type HubMessage = LiveEvent | PromptSnapshot;

/** Event ids: the hub's sequence number, zero-padded so that ids also sort as strings. */
export const formatEventId = (seq: number) => String(seq).padStart(16, "0");

export function parseEventId(id: string | null | undefined): number | undefined {
  if (!id || !/^\d{1,16}$/.test(id)) return undefined;
  const seq = Number(id);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

export function toSse(event: LiveEvent): string {
  return `id: ${event.id}\nevent: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`;
}
