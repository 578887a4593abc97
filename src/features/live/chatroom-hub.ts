import { DurableObject } from "cloudflare:workers";
import type { PromptDto } from "../messages";
import {
  type CaughtUp,
  formatEventId,
  type HubSubscriber,
  type LiveEvent,
  type LiveEventData,
  type LiveEventName,
  type PromptSnapshot,
  parseEventId,
  type StreamRevocation,
  subscriberCovered,
} from "./live.events";

/** Replay buffer bounds from the contract: events at most 10 minutes and 1000 events old. */
export const REPLAY_WINDOW_MS = 10 * 60 * 1000;
export const REPLAY_MAX_EVENTS = 1000;
/**
 * A generation that has not been heard from for this long is taken to be dead, and another delivery of
 * the prompt may take over. Longer than the consumer's first-chunk and idle-gap timeouts.
 */
export const GENERATION_LEASE_MS = 45_000;
/** How long the hub remembers a settled prompt, for subscribers that arrive just after it settled. */
const SETTLED_MEMORY_MS = REPLAY_WINDOW_MS;
/**
 * A prompt the hub has heard nothing of for this long is forgotten, whatever its state: far past any
 * generation lease and the queue's retries, which settle or dead-letter a prompt within minutes.
 */
const FORGOTTEN_AFTER_MS = 60 * 60 * 1000;

/** The answer to a generation's call: go on, or stop (cancelled or chatroom deleted) with the text kept. */
export type GenerationAnswer = { stop: false } | { stop: true; text: string };
export type BeginAnswer =
  | GenerationAnswer
  /** Another delivery's generation is alive; its lease runs out in `retryInMs`. */
  | { stop: false; busy: true; retryInMs: number }
  /** The hub saw the prompt settle: this delivery is late, unless D1 says the prompt was retried. */
  | { stop: false; settled: true };
export type CancelAnswer = { settled: false; text: string } | { settled: true };

type PromptState = "pending" | "generating" | "cancelled" | "settled";
type PromptRow = {
  id: string;
  state: PromptState;
  text: string;
  generation: string | null;
  seen_at: number;
  settled: string | null;
  /** The prompt's run (D1's `incarnation`, bumped by each retry) this row is about. */
  incarnation: number;
};

/** Who a subscriber is: what it streams (one prompt or all) and the token or ticket it was opened with. */
type Attachment = { promptId: string | null } & Partial<HubSubscriber>;

/**
 * How long the hub remembers a revocation it was told of, to refuse a stream whose authorization was
 * checked just before the revocation but that reaches the hub just after it.
 */
const REVOCATION_MEMORY_MS = 60_000;
/** Close codes: a deleted chatroom is a normal end; a revoked token is a policy end (RFC 6455 §7.4.1). */
const CLOSE_DELETED = 1000;
const CLOSE_REVOKED = 1008;

const SCHEMA = `CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, body TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS prompts (id TEXT PRIMARY KEY, state TEXT NOT NULL, text TEXT NOT NULL,
    generation TEXT, seen_at INTEGER NOT NULL, settled TEXT, incarnation INTEGER NOT NULL DEFAULT 0);
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);`;

const ALL = "all";
/** Publish scope of an event for the chatroom's streams only, not per-prompt ones. */
const ROOM_ONLY = Symbol("room only");
const promptTag = (promptId: string) => `prompt:${promptId}`;

/**
 * One per chatroom: fans live events out to every subscriber and keeps a bounded replay buffer. It is
 * never the record (D1 is): it only knows what it published. Subscribers are WebSockets held through
 * the Hibernation API, so an idle chatroom with open streams costs nothing; Workers bridge them to SSE.
 */
export class ChatroomHub extends DurableObject<Env> {
  private schemaReady = false;
  /** Revocations told to this instance lately (memory only: a hub that had none keeps no storage). */
  private revocations: Array<StreamRevocation & { until: number }> = [];

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Keepalive for WebSocket clients, answered by the runtime without waking the hub.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  /**
   * The hub's storage, made on first use: a call that finds nothing to do (a revocation for a chatroom
   * nobody streams) leaves no storage behind, so no hub exists for it.
   */
  private get sql(): SqlStorage {
    const sql = this.ctx.storage.sql;
    if (!this.schemaReady) {
      sql.exec(SCHEMA);
      // Hubs created before prompts had runs: their rows are taken to be about the first run.
      const columns = sql.exec<{ name: string }>("SELECT name FROM pragma_table_info('prompts')").toArray();
      if (!columns.some((column) => column.name === "incarnation")) {
        sql.exec("ALTER TABLE prompts ADD COLUMN incarnation INTEGER NOT NULL DEFAULT 0");
      }
      this.schemaReady = true;
    }
    return sql;
  }

  /**
   * A prompt was accepted (sent or retried, run `incarnation`): it starts afresh, and every subscriber
   * hears of it. A run the hub already knows of (its generation began first and announced it) is left as is.
   */
  publishPrompt(prompt: PromptDto, incarnation = 0, activeLeafId?: string): void {
    if (this.deleted()) return;
    const row = this.prompt(prompt.id);
    if (!row || row.incarnation < incarnation) this.announce(prompt, incarnation);
    if (activeLeafId !== undefined) this.publishBranch(activeLeafId);
  }

  /** The chatroom's active branch moved (a send, edit, regenerate, retry or switch): its subscribers hear where it ends. */
  publishBranch(activeLeafId: string | null): void {
    if (this.deleted()) return;
    this.publish("branch", { activeLeafId }, ROOM_ONLY);
  }

  /** The chatroom's name or settings changed: its subscribers get it as it now is. */
  publishChatroom(chatroom: LiveEventData["chatroom"]["chatroom"]): void {
    if (this.deleted()) return;
    this.publish("chatroom", { chatroom }, ROOM_ONLY);
  }

  /**
   * A queue delivery (attempt `attempt`) wants to write the prompt's reply. Refused (busy) while another
   * delivery's generation is alive; told to stop when the prompt was cancelled or the chatroom deleted.
   * Taking over from a dead generation drops the text it published (subscribers get `retrying`).
   * `restart` is for a delivery that found the prompt pending in D1 although the hub saw it settle.
   * A run (`incarnation`) the hub has not heard of yet is announced here, with `prompt`, before its first
   * delta; what the hub knows of earlier runs (cancelled, settled) does not apply to it.
   */
  beginGeneration(
    promptId: string,
    generation: string,
    attempt = 1,
    restart = false,
    prompt?: PromptDto,
    incarnation = 0,
  ): BeginAnswer {
    if (this.deleted()) return { stop: true, text: "" };
    let row = this.prompt(promptId);
    // D1 has moved on to a later run: this delivery read a prompt that is no longer pending as it was.
    if (row && row.incarnation > incarnation) return { stop: false, settled: true };
    if (!row || row.incarnation < incarnation) {
      if (prompt) this.announce(prompt, incarnation);
      row = undefined;
    }
    if (row?.state === "cancelled") return { stop: true, text: row.text };
    if (row?.state === "settled" && !restart) return { stop: false, settled: true };
    const now = Date.now();
    if (row?.state === "generating" && row.generation !== generation) {
      const leaseLeft = GENERATION_LEASE_MS - (now - row.seen_at);
      if (leaseLeft > 0) return { stop: false, busy: true, retryInMs: leaseLeft };
      if (row.text)
        this.publish("retrying", { promptId, attempt: Math.max(1, attempt - 1), retryInSeconds: 0 }, promptId);
    }
    this.putPrompt({
      id: promptId,
      state: "generating",
      text: "",
      generation,
      seen_at: now,
      settled: null,
      incarnation,
    });
    return { stop: false };
  }

  /** The next piece of a reply: published unless the prompt was cancelled meanwhile. */
  pushDelta(promptId: string, generation: string, text: string): GenerationAnswer {
    if (this.deleted()) return { stop: true, text: "" };
    const row = this.prompt(promptId);
    if (!row || row.state === "cancelled") return { stop: true, text: row?.text ?? "" };
    if (row.generation !== generation || row.state !== "generating") return { stop: true, text: row.text };
    this.sql.exec("UPDATE prompts SET text = text || ?, seen_at = ? WHERE id = ?", text, Date.now(), promptId);
    // An empty push is the generation's keepalive: it renews the lease and learns about a cancel.
    if (text) this.publish("delta", { promptId, text }, promptId);
    return { stop: false };
  }

  /** A retryable failure: the text so far is dropped and the prompt waits for its next delivery. */
  publishRetrying(promptId: string, generation: string, attempt: number, retryInSeconds: number): void {
    if (this.deleted()) return;
    const row = this.prompt(promptId);
    if (row && (row.generation !== generation || row.state !== "generating")) return;
    this.putPrompt({
      id: promptId,
      state: "pending",
      text: "",
      generation: null,
      seen_at: Date.now(),
      settled: null,
      incarnation: row?.incarnation ?? 0,
    });
    this.publish("retrying", { promptId, attempt, retryInSeconds }, promptId);
  }

  /**
   * Freezes the prompt's reply at exactly the text published so far, so no later delta goes out; the
   * caller settles it in D1 with that text. A prompt the hub already saw settled is left alone, and so
   * is a later run than the caller's (`incarnation`, from D1).
   */
  cancel(promptId: string, incarnation = 0): CancelAnswer {
    const found = this.prompt(promptId);
    if (found && found.incarnation > incarnation) return { settled: true };
    // What the hub knows of an earlier run says nothing about this one.
    const row = found && found.incarnation === incarnation ? found : undefined;
    if (row?.state === "settled") return { settled: true };
    const text = row?.state === "generating" || row?.state === "cancelled" ? row.text : "";
    this.putPrompt({
      id: promptId,
      state: "cancelled",
      text,
      generation: row?.generation ?? null,
      seen_at: Date.now(),
      settled: null,
      incarnation,
    });
    return { settled: false, text };
  }

  /** Whether a delivery is writing the prompt's reply right now. */
  isGenerating(promptId: string): boolean {
    const row = this.prompt(promptId);
    return row?.state === "generating" && Date.now() - row.seen_at < GENERATION_LEASE_MS;
  }

  /** The prompt's run `incarnation` settled (stored in D1): subscribers get `reply`, and per-prompt streams end. */
  publishReply(prompt: PromptDto, incarnation = 0): void {
    if (this.deleted()) return;
    // A later run the hub already knows of keeps its row.
    if ((this.prompt(prompt.id)?.incarnation ?? incarnation) <= incarnation) {
      this.putPrompt({
        id: prompt.id,
        state: "settled",
        text: "",
        generation: null,
        seen_at: Date.now(),
        settled: JSON.stringify(prompt),
        incarnation,
      });
    }
    this.publish("reply", { prompt }, prompt.id);
  }

  /** The chatroom is gone: tell everyone, close every stream at once and forget everything. */
  async chatroomDeleted(chatroomId: string): Promise<void> {
    this.publish("deleted", { chatroomId }, null);
    for (const socket of this.ctx.getWebSockets()) closeSocket(socket, CLOSE_DELETED, "chatroom deleted");
    await this.ctx.storage.deleteAll();
    this.schemaReady = false;
    this.setMeta("deleted", 1);
  }

  /**
   * A token, its tickets or every token of a version were revoked: each stream opened with one of them
   * gets `revoked` and is closed. Streams opened later are refused the same way for a minute, in case
   * their authorization was checked just before the revocation. Hibernated sockets are read from their
   * attachments; none is woken, and a hub with no subscriber touches no storage. Returns how many ended.
   */
  revokeStreams(revocation: StreamRevocation): number {
    const now = Date.now();
    this.revocations = this.revocations.filter((known) => known.until > now);
    this.revocations.push({ ...revocation, until: now + REVOCATION_MEMORY_MS });
    let ended = 0;
    for (const socket of this.ctx.getWebSockets()) {
      const attachment = socket.deserializeAttachment() as Attachment | null;
      if (!attachment || !subscriberCovered(revocation, attachment)) continue;
      this.endRevoked(socket, revocation);
      ended++;
    }
    return ended;
  }

  /**
   * Subscribes a WebSocket (`Upgrade: websocket`). `?prompt=` limits it to one prompt and starts with a
   * snapshot of it; `?after=` (an event id) replays what followed, or sends `reset` when that is gone.
   */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    const url = new URL(request.url);
    const promptId = url.searchParams.get("prompt");
    const after = url.searchParams.get("after");
    const attachment: Attachment = { promptId, ...subscriberOf(url.searchParams) };
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, [promptId ? promptTag(promptId) : ALL]);
    server.serializeAttachment(attachment);
    const now = Date.now();
    const revoked = this.revocations.find((known) => known.until > now && subscriberCovered(known, attachment));
    // Everything below runs in this one turn of the object: no publish can slip in between the
    // snapshot or replay and the subscription.
    if (revoked) {
      this.endRevoked(server, revoked);
    } else if (this.deleted()) {
      server.send(
        JSON.stringify(this.event(this.head(), "deleted", { chatroomId: url.searchParams.get("room") ?? "" })),
      );
      closeSocket(server, CLOSE_DELETED, "chatroom deleted");
    } else if (promptId) {
      // Only what the hub knows of the run the subscriber read from D1 (or a later one) applies to it.
      const run = Number(url.searchParams.get("run") ?? 0);
      const found = this.prompt(promptId);
      const row = found && found.incarnation >= run ? found : undefined;
      const snapshot: PromptSnapshot = {
        kind: "snapshot",
        head: formatEventId(this.head()),
        text: row && (row.state === "generating" || row.state === "cancelled") ? row.text : "",
        settled: row?.settled ? (JSON.parse(row.settled) as PromptDto) : null,
      };
      server.send(JSON.stringify(snapshot));
    } else if (after !== null) {
      for (const event of this.replayAfter(after)) server.send(JSON.stringify(event));
      // A Worker's subscription bounds what waits for its reader from here on (the replay is bounded already).
      if (url.searchParams.has("worker")) server.send(JSON.stringify({ kind: "caught-up" } satisfies CaughtUp));
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  override webSocketMessage(): void {
    // Subscribers only listen; anything they send is ignored (`ping` is answered by the runtime).
  }

  override webSocketClose(socket: WebSocket, code: number, reason: string): void {
    try {
      socket.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {}
  }

  override webSocketError(socket: WebSocket): void {
    try {
      socket.close(1011, "error");
    } catch {}
  }

  /** `revoked` (not kept for replay: it is about this subscriber alone), then the socket is closed. */
  private endRevoked(socket: WebSocket, revocation: StreamRevocation) {
    try {
      socket.send(JSON.stringify(this.event(this.head(), "revoked", { reason: revocation.reason })));
    } catch {}
    closeSocket(socket, CLOSE_REVOKED, "revoked");
  }

  private replayAfter(after: string): LiveEvent[] {
    this.prune(Date.now());
    const seq = parseEventId(after);
    const head = this.head();
    // Replay only when every event after the client's id is still in the buffer.
    if (seq === undefined || seq > head || seq < this.meta("pruned_through")) {
      return [this.event(head, "reset", {})];
    }
    return this.sql
      .exec<{ body: string }>("SELECT body FROM events WHERE seq > ? ORDER BY seq", seq)
      .toArray()
      .map((row) => JSON.parse(row.body) as LiveEvent);
  }

  private publish<K extends LiveEventName>(
    name: K,
    data: LiveEventData[K],
    promptId: string | null | typeof ROOM_ONLY,
  ) {
    const now = Date.now();
    const seq = this.head() + 1;
    const event = this.event(seq, name, data);
    const body = JSON.stringify(event);
    this.sql.exec("INSERT INTO events (seq, at, body) VALUES (?, ?, ?)", seq, now, body);
    this.setMeta("head", seq);
    this.prune(now);
    // A chatroom-wide event (deleted) reaches every subscriber, per-prompt ones included; a room-only one
    // (branch, chatroom) only the chatroom's streams.
    const sockets = promptId ? this.ctx.getWebSockets(ALL) : this.ctx.getWebSockets();
    if (typeof promptId === "string") sockets.push(...this.ctx.getWebSockets(promptTag(promptId)));
    for (const socket of sockets) {
      try {
        socket.send(body);
      } catch {
        // A socket that cannot take a message is closing; its close handler tidies up.
      }
    }
  }

  private event<K extends LiveEventName>(seq: number, name: K, data: LiveEventData[K]): LiveEvent {
    return { id: formatEventId(seq), event: name, data } as LiveEvent;
  }

  private prune(now: number) {
    const head = this.head();
    const old = this.sql
      .exec<{ seq: number | null }>("SELECT max(seq) AS seq FROM events WHERE at < ?", now - REPLAY_WINDOW_MS)
      .one().seq;
    const through = Math.max(head - REPLAY_MAX_EVENTS, old ?? 0);
    if (through > this.meta("pruned_through")) {
      this.sql.exec("DELETE FROM events WHERE seq <= ?", through);
      this.setMeta("pruned_through", through);
    }
    // Rows of any state go once nothing has been heard of them for long (a reply whose announcement was
    // lost would otherwise keep its row for ever); a later delivery starts afresh without one.
    this.sql.exec(
      "DELETE FROM prompts WHERE (state = 'settled' AND seen_at < ?) OR seen_at < ?",
      now - SETTLED_MEMORY_MS,
      now - FORGOTTEN_AFTER_MS,
    );
  }

  /** Run `incarnation` of the prompt starts afresh, pending, and every subscriber hears of it. */
  private announce(prompt: PromptDto, incarnation: number) {
    const now = Date.now();
    this.putPrompt({
      id: prompt.id,
      state: "pending",
      text: "",
      generation: null,
      seen_at: now,
      settled: null,
      incarnation,
    });
    this.publish("prompt", { prompt }, prompt.id);
  }

  private prompt(promptId: string): PromptRow | undefined {
    return this.sql.exec<PromptRow>("SELECT * FROM prompts WHERE id = ?", promptId).toArray()[0];
  }

  private putPrompt(row: PromptRow) {
    this.sql.exec(
      "INSERT OR REPLACE INTO prompts (id, state, text, generation, seen_at, settled, incarnation) VALUES (?, ?, ?, ?, ?, ?, ?)",
      row.id,
      row.state,
      row.text,
      row.generation,
      row.seen_at,
      row.settled,
      row.incarnation,
    );
  }

  private head() {
    return this.meta("head");
  }

  private deleted() {
    return this.meta("deleted") === 1;
  }

  private meta(key: string): number {
    return this.sql.exec<{ value: number }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value ?? 0;
  }

  private setMeta(key: string, value: number) {
    this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, value);
  }
}

function closeSocket(socket: WebSocket, code: number, reason: string) {
  try {
    socket.close(code, reason);
  } catch {
    // Already closing.
  }
}

/** The subscriber's token or ticket, as the Worker that checked it passes it on (`user`, `ver`, `tid`). */
function subscriberOf(params: URLSearchParams): Partial<HubSubscriber> {
  const userId = params.get("user") ?? undefined;
  const version = params.get("ver");
  const tokenVersion = version === null ? undefined : Number(version);
  const tokenId = params.get("tid") ?? undefined;
  return { userId, tokenVersion: Number.isSafeInteger(tokenVersion) ? tokenVersion : undefined, tokenId };
}
