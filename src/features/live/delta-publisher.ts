import type { GenerationChannel } from "./hub";

/** At most one hub call per this many milliseconds per prompt; the first piece goes out at once. */
export const DELTA_INTERVAL_MS = 50;
/** While nothing is pushed, an empty push goes out this often, so a cancel is heard within a second. */
const KEEPALIVE_MS = 750;
const KEEPALIVE_TICK_MS = 250;

/**
 * Coalesces the pieces of a reply into hub calls: the first at once, then at most one call per
 * DELTA_INTERVAL_MS, one at a time and in order. When the hub answers "stop" (the prompt was cancelled
 * or its chatroom deleted), nothing more is pushed and `onStop` is called with the text the hub kept.
 */
export class DeltaPublisher {
  private buffered = "";
  private lastPushAt = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<void> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private broken = false;
  private closed = false;
  /** Set once the hub said stop: the reply's text as the hub published it. */
  stoppedWith: string | undefined;

  private readonly beat: ReturnType<typeof setInterval>;

  constructor(
    private readonly channel: GenerationChannel,
    private readonly onStop: () => void,
    private readonly intervalMs = DELTA_INTERVAL_MS,
  ) {
    // While Gemini is silent (thinking), empty pushes keep the generation's lease alive and let a cancel
    // stop the request within a second rather than at the next piece of text.
    this.beat = setInterval(() => {
      if (!this.inFlight && !this.timer && Date.now() - this.lastPushAt >= KEEPALIVE_MS) this.push(true);
    }, KEEPALIVE_TICK_MS);
  }

  add(piece: string) {
    this.buffered += piece;
    this.schedule();
  }

  /** Pushes whatever is left (still keeping the interval) and waits for every call to finish. */
  async flush(): Promise<void> {
    await this.close();
    if (!this.buffered || this.stoppedWith !== undefined || this.broken) return;
    const wait = this.lastPushAt + this.intervalMs - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    this.push();
    while (this.inFlight) await this.inFlight;
  }

  /** Waits for a call in flight without pushing more (after a failure). */
  async settle(): Promise<void> {
    await this.close();
    this.buffered = "";
  }

  private async close() {
    this.closed = true;
    clearInterval(this.beat);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.inFlight) await this.inFlight;
  }

  private schedule() {
    if (this.closed || this.inFlight || this.timer || this.stoppedWith !== undefined || this.broken) return;
    const wait = this.lastPushAt + this.intervalMs - Date.now();
    if (wait <= 0) {
      this.push();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.push();
    }, wait);
  }

  private push(keepalive = false) {
    if (this.closed && keepalive) return;
    if (this.stoppedWith !== undefined) return;
    // After a failed push the hub's text would no longer be what was generated: text stops going out,
    // but keepalives go on, so a cancel (of exactly what subscribers saw) is still heard.
    const text = this.broken ? "" : this.buffered;
    if (!text && !keepalive) return;
    this.buffered = "";
    this.lastPushAt = Date.now();
    this.inFlight = this.channel
      .push(text)
      .then((answer) => {
        if (answer.stop && this.stoppedWith === undefined) {
          this.stoppedWith = answer.text;
          this.onStop();
        }
      })
      .catch((err) => {
        // The reply is still written and stored; only its live view is lost.
        if (!this.broken)
          console.error(JSON.stringify({ level: "error", message: "hub pushDelta failed", error: String(err) }));
        this.broken = true;
      })
      .finally(() => {
        this.inFlight = undefined;
        if (this.buffered && !this.broken) this.schedule();
      });
  }
}
