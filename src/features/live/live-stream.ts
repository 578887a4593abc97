import type { HubSubscription } from "./hub";
import { type LiveEvent, toSse } from "./live.events";

/** The contract's ceiling for a quiet stream between comments. */
const MAX_HEARTBEAT_MS = 15_000;
/** Bytes written ahead of what the client has taken; the rest waits in the hub subscription. */
const IN_FLIGHT_BYTES = 64 * 1024;
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
 * Turns a hub subscription into a Server-Sent Events response, written to a native byte stream
 * (IdentityTransformStream): a write completes when the client has taken it, so the bytes it has not
 * taken are known. At most IN_FLIGHT_BYTES are written ahead of the client; the rest waits in the
 * subscription, which gives up past its own bound (MAX_QUEUED_BYTES): the stream then ends, and the
 * client resumes with Last-Event-ID. A failed write is the first sign of a client that vanished (the
 * abort signal may never follow), and ends the stream too.
 *
 * What is written goes to the runtime from a timer callback (setTimeout 0), all that is pending in
 * one write. The runtime runs timers just after it polled its connections, so a client that went
 * away is noticed first and the response is cancelled (request.signal aborts). A write made straight
 * from a hub message runs later in the same busy turn and can meet a connection that already broke
 * unnoticed: the runtime then fails the response itself, logs "Uncaught Error: Network connection
 * lost." and never aborts the signal.
 */
export function liveStreamResponse(plan: LiveStreamPlan): Response {
  const encoder = new TextEncoder();
  const { subscription, request } = plan;
  const { readable, writable } = new IdentityTransformStream();
  const writer = writable.getWriter();
  // Rejected when the client goes away; the writes below say so too.
  writer.closed.catch(() => {});
  let inFlight = 0;
  let drained: (() => void) | undefined;
  let finished = false;
  /** Written but not yet handed to the runtime: it goes at the next flush. */
  let pending: Uint8Array[] = [];
  let flushTimer: ReturnType<typeof setTimeout> | undefined;

  /** Hands what is pending to the runtime in one write; closes the stream once it has finished. */
  const flush = () => {
    flushTimer = undefined;
    if (pending.length > 0) {
      const bytes = concat(pending);
      pending = [];
      writer.write(bytes).then(
        () => {
          inFlight -= bytes.byteLength;
          if (inFlight <= IN_FLIGHT_BYTES) drained?.();
        },
        () => finish("departed"),
      );
    }
    if (finished) writer.close().catch(() => {});
  };

  const finish = (end: "done" | "departed" | "behind" = "done") => {
    if (finished) return;
    finished = true;
    subscription.close();
    request.signal.removeEventListener("abort", departed);
    drained?.();
    if (end === "done") {
      // What is still pending goes first; the stream closes on the same timer turn.
      flushTimer ??= setTimeout(flush, 0);
      return;
    }
    if (flushTimer) clearTimeout(flushTimer);
    pending = [];
    // A reader that stopped is aborted (what waits for it is dropped); a departed client's stream is
    // closed (aborting one the runtime already let go of only logs "Uncaught").
    (end === "behind"
      ? writer.abort(new Error("live stream ended: the client fell too far behind"))
      : writer.close()
    ).catch(() => {});
  };
  // With enable_request_signal the runtime aborts this when the client disconnects.
  const departed = () => finish("departed");
  request.signal.addEventListener("abort", departed);

  /** Writes text for the client; false once the stream has ended. */
  const write = (text: string): boolean => {
    if (finished) return false;
    const bytes = encoder.encode(text);
    inFlight += bytes.byteLength;
    pending.push(bytes);
    flushTimer ??= setTimeout(flush, 0);
    return true;
  };
  /** Waits until the client has taken all but IN_FLIGHT_BYTES of what was written (or the stream ended). */
  const paced = async () => {
    while (!finished && inFlight > IN_FLIGHT_BYTES && !subscription.overflowed) {
      // The subscription may give up meanwhile (its reader fell too far behind).
      await Promise.race([
        new Promise<void>((resolve) => {
          drained = resolve;
        }),
        subscription.ended,
      ]);
      drained = undefined;
    }
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
      await paced();
      const message = await subscription.next(Math.min(plan.heartbeatMs, left));
      if (message === "closed") {
        if (subscription.overflowed) finish("behind");
        return;
      }
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
  return new Response(readable, { status: 200, headers: { ...SSE_HEADERS, ...plan.headers } });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const joined = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    joined.set(chunk, at);
    at += chunk.byteLength;
  }
  return joined;
}
