import type { HubSubscription } from "./hub";
import { type LiveEvent, toSse } from "./live.events";

/** The contract's ceiling for a quiet stream between comments. */
const MAX_HEARTBEAT_MS = 15_000;
/** A client that has not taken a write for this long is gone or stuck: the stream ends. */
const WRITE_TIMEOUT_MS = 10_000;
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
  /** The stream ends after an event for which this is true (and always after `deleted`). */
  endsAfter?: (event: LiveEvent) => boolean;
  /** Asked whenever the stream has been quiet for a heartbeat: events to write (a fallback check). */
  onIdle?: () => Promise<LiveEvent[]>;
  headers?: Record<string, string>;
};

/**
 * Turns a hub subscription into a Server-Sent Events response. The body is written in the background:
 * the Response must be returned before the first write, which waits for the client to read.
 */
export function liveStreamResponse(plan: LiveStreamPlan): Response {
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const encoder = new TextEncoder();
  const { subscription, request } = plan;
  let finished = false;

  const finish = (abort = false) => {
    if (finished) return;
    finished = true;
    subscription.close();
    request.signal.removeEventListener("abort", departed);
    // A stuck client's stream is aborted (a write may be waiting on it); a departed one is closed, since
    // the runtime already let go of it (aborting it too only logs "Uncaught undefined").
    (abort ? writer.abort(new Error("live stream ended: the client stopped reading")) : writer.close()).catch(() => {});
  };
  // With enable_request_signal the runtime aborts this when the client disconnects; without it a dead
  // client would look alive, since writes to its stream keep succeeding.
  const departed = () => finish();
  request.signal.addEventListener("abort", departed);

  const write = async (text: string) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("write timed out")), WRITE_TIMEOUT_MS);
    });
    try {
      await Promise.race([writer.write(encoder.encode(text)), timeout]);
    } finally {
      if (timer) clearTimeout(timer);
    }
  };
  const ends = (event: LiveEvent) => event.event === "deleted" || (plan.endsAfter?.(event) ?? false);

  const pump = async () => {
    const deadline = Date.now() + MAX_STREAM_MS;
    await write(": connected\n\n");
    for (const event of plan.initial) {
      await write(toSse(event));
      if (ends(event)) return;
    }
    while (!finished) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      const message = await subscription.next(Math.min(plan.heartbeatMs, left));
      if (message === "closed") return;
      if (message === "idle") {
        const events = (await plan.onIdle?.()) ?? [];
        if (events.length === 0) await write(": ping\n\n");
        for (const event of events) {
          await write(toSse(event));
          if (ends(event)) return;
        }
        continue;
      }
      if ("kind" in message) continue;
      await write(toSse(message));
      if (ends(message)) return;
    }
  };
  pump().then(
    () => finish(),
    () => finish(true),
  );
  return new Response(readable, { status: 200, headers: { ...SSE_HEADERS, ...plan.headers } });
}
