import type { HubSubscription } from "./hub";
import { type LiveEvent, toSse } from "./live.events";

/** The contract's ceiling for a quiet stream between comments. */
const MAX_HEARTBEAT_MS = 15_000;
/**
 * A subscriber with more than this waiting for it has stopped reading (or reads far too slowly): its
 * stream ends, and it resumes with Last-Event-ID like any reconnect. Its memory is then let go at once.
 */
export const MAX_BUFFERED_BYTES = 1024 * 1024;
/** Streams end after this long; clients reconnect (with Last-Event-ID). */
export const MAX_STREAM_MS = 30 * 60 * 1000;

export function heartbeatMs(env: Env): number {
  const seconds = Number(env.LIVE_HEARTBEAT_SECONDS);
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1000, MAX_HEARTBEAT_MS) : MAX_HEARTBEAT_MS;
}

export const SSE_HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache",
  // Proxies that buffer (nginx) would hold the deltas back.
  "X-Accel-Buffering": "no",
};

export type LiveStreamPlan = {
  /** The client's request: its signal tells when the client has gone. */
  request: Request;
  subscription: HubSubscription;
  heartbeatMs: number;
  /** Written before anything from the hub. */
  initial: LiveEvent[];
  /** The stream ends after an event for which this is true (and always after `deleted` and `revoked`). */
  endsAfter?: (event: LiveEvent) => boolean;
  /** Asked whenever the stream has been quiet for a heartbeat: events to write (a fallback check). */
  onIdle?: () => Promise<LiveEvent[]>;
  headers?: Record<string, string>;
};

/** Events after which a stream always ends: the chatroom is gone, or the stream's token or ticket is. */
const FINAL_EVENTS = new Set<LiveEvent["event"]>(["deleted", "revoked"]);

/**
 * Turns a hub subscription into a Server-Sent Events response. Events are queued on the body without
 * waiting for the client (nothing here waits on a write, so nothing is left to reject when a client
 * vanishes), and the queue is bounded: past MAX_BUFFERED_BYTES unread, the stream ends with an error.
 */
export function liveStreamResponse(plan: LiveStreamPlan): Response {
  const encoder = new TextEncoder();
  const { subscription, request } = plan;
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  let finished = false;

  const finish = (behind = false) => {
    if (finished) return;
    finished = true;
    subscription.close();
    request.signal.removeEventListener("abort", departed);
    try {
      // Erroring drops what is queued for a reader that stopped; closing lets a reader take the rest.
      if (behind) controller?.error(new Error("live stream ended: the client fell too far behind"));
      else controller?.close();
    } catch {
      // The client cancelled the body already.
    }
  };
  // With enable_request_signal the runtime aborts this when the client disconnects.
  const departed = () => finish();
  request.signal.addEventListener("abort", departed);

  const body = new ReadableStream<Uint8Array>(
    {
      start: (c) => {
        controller = c;
      },
      cancel: () => finish(),
    },
    new ByteLengthQueuingStrategy({ highWaterMark: MAX_BUFFERED_BYTES }),
  );

  /** Queues text for the client; false once the stream has ended (or just ended, the client too far behind). */
  const write = (text: string): boolean => {
    if (finished || !controller) return false;
    controller.enqueue(encoder.encode(text));
    if ((controller.desiredSize ?? 0) < 0) finish(true);
    return !finished;
  };
  /** Writes an event; false when the stream ends with it. */
  const emit = (event: LiveEvent) =>
    write(toSse(event)) && !FINAL_EVENTS.has(event.event) && !(plan.endsAfter?.(event) ?? false);

  const pump = async () => {
    const deadline = Date.now() + MAX_STREAM_MS;
    if (!write(": connected\n\n")) return;
    for (const event of plan.initial) if (!emit(event)) return;
    while (!finished) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      const message = await subscription.next(Math.min(plan.heartbeatMs, left));
      if (message === "closed") return;
      if (message === "idle") {
        const events = (await plan.onIdle?.()) ?? [];
        if (events.length === 0 && !write(": ping\n\n")) return;
        for (const event of events) if (!emit(event)) return;
        continue;
      }
      if ("kind" in message) continue;
      if (!emit(message)) return;
    }
  };
  pump().then(
    () => finish(),
    (err: unknown) => {
      console.error(JSON.stringify({ level: "error", message: "live stream failed", error: String(err) }));
      finish();
    },
  );
  return new Response(body, { status: 200, headers: { ...SSE_HEADERS, ...plan.headers } });
}
