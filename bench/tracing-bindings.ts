/**
 * The benchmark's view of a request's binding calls: every D1 statement or batch, KV call, Queue send and
 * Durable Object call is one round trip (a network hop in production). Each is recorded with its
 * *level*: a call made while another is still in flight shares that call's level (they overlap), a
 * call made when none is in flight starts the next one. The number of levels is the request's
 * critical path in round trips. Optionally each call is delayed first, by the latency model's figure
 * for its kind, so the request's wall time approximates what an edge client would see.
 */
export type TraceKind = "d1" | "kv.get" | "kv.put" | "kv.delete" | "queue" | "do";

export type TracedCall = {
  kind: TraceKind;
  level: number;
  /** KV key, D1 SQL (one per statement of a batch), queue or Durable Object method. */
  what: string[];
  /** D1 parameters, one array per statement (for the floor Worker's replay). */
  params?: unknown[][];
  /** A D1 batch (rather than one statement run on its own). */
  batch?: boolean;
  /** The D1 session it ran in (`withSession`'s constraint or bookmark); undefined: the database itself. */
  session?: string;
  at: number;
  /** Whether the call had finished (false while in flight, e.g. one handed to waitUntil). */
  done: boolean;
};

export type LatencyModel = Partial<Record<TraceKind, number>>;

export class Tracer {
  calls: TracedCall[] = [];
  /** Every KV write since the last reset, with its key and time (for the write-budget figure). */
  kvWrites: { key: string; at: number }[] = [];
  private inFlight = 0;
  private level = 0;

  constructor(private readonly model: LatencyModel = {}) {}

  reset() {
    this.calls = [];
    this.inFlight = 0;
    this.level = 0;
  }

  async record<T>(
    kind: TraceKind,
    what: string[],
    params: unknown[][] | undefined,
    run: () => Promise<T>,
    batch = false,
    session?: string,
  ) {
    if (this.inFlight === 0) this.level++;
    this.inFlight++;
    const call: TracedCall = { kind, level: this.level, what, params, batch, session, at: Date.now(), done: false };
    this.calls.push(call);
    if (kind === "kv.put") for (const key of what) this.kvWrites.push({ key, at: Date.now() });
    try {
      const delay = this.model[kind] ?? 0;
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      return await run();
    } finally {
      this.inFlight--;
      call.done = true;
    }
  }
}

type Statement = { sql: string; params: unknown[] };

export function tracedD1(d1: D1Database, tracer: Tracer): D1Database {
  const originals = new WeakMap<object, { statement: D1PreparedStatement } & Statement>();
  const wrap = (
    statement: D1PreparedStatement,
    sql: string,
    params: unknown[],
    session?: string,
  ): D1PreparedStatement => {
    const proxy = new Proxy(statement, {
      get(target, property) {
        if (property === "bind") return (...values: unknown[]) => wrap(target.bind(...values), sql, values, session);
        if (property === "first" || property === "run" || property === "all" || property === "raw") {
          return (...args: unknown[]) =>
            tracer.record(
              "d1",
              [sql],
              [params],
              () => (target[property] as (...a: unknown[]) => Promise<unknown>).apply(target, args),
              false,
              session,
            );
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    originals.set(proxy, { statement, sql, params });
    return proxy;
  };
  const wrapDatabase = <T extends object>(database: T, session?: string): T =>
    new Proxy(database, {
      get(target, property) {
        const d1Like = target as unknown as D1Database;
        if (property === "withSession")
          return (constraint?: string) =>
            wrapDatabase(
              (d1Like.withSession as (c?: string) => object).call(target, constraint),
              constraint ?? "first-unconstrained",
            );
        if (property === "prepare") return (sql: string) => wrap(d1Like.prepare(sql), sql, [], session);
        if (property === "batch") {
          return (statements: D1PreparedStatement[]) => {
            const known = statements.map((s) => originals.get(s));
            return tracer.record(
              "d1",
              known.map((s) => s?.sql ?? "?"),
              known.map((s) => s?.params ?? []),
              () => d1Like.batch(statements.map((s, i) => known[i]?.statement ?? s)),
              true,
              session,
            );
          };
        }
        if (property === "exec")
          return (sql: string) => tracer.record("d1", [sql], [[]], () => d1Like.exec(sql), false, session);
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  return wrapDatabase(d1);
}

export function tracedKv(kv: KVNamespace, tracer: Tracer): KVNamespace {
  const kinds: Record<string, TraceKind> = {
    get: "kv.get",
    getWithMetadata: "kv.get",
    put: "kv.put",
    delete: "kv.delete",
    list: "kv.get",
  };
  return new Proxy(kv, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      const kind = kinds[String(property)];
      if (!kind) return value.bind(target);
      // A bulk read (an array of keys) is one call: recorded with all its keys, as a batch.
      return (key: unknown, ...rest: unknown[]) =>
        tracer.record(
          kind,
          Array.isArray(key) ? key.map(String) : [String(key)],
          undefined,
          () => (value as (...a: unknown[]) => Promise<unknown>).call(target, key, ...rest),
          Array.isArray(key),
        );
    },
  });
}

export function tracedQueue(queue: Queue, tracer: Tracer): Queue {
  return new Proxy(queue, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) =>
        tracer.record("queue", [String(property)], undefined, () =>
          (value as (...a: unknown[]) => Promise<unknown>).apply(target, args),
        );
    },
  });
}

/** A Durable Object namespace whose stubs' calls (RPC methods and fetch) are traced. */
export function tracedDurableObjects<T extends object>(namespace: T, tracer: Tracer): T {
  return new Proxy(namespace, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property !== "get") return typeof value === "function" ? value.bind(target) : value;
      return (...args: unknown[]) => {
        const stub = (value as (...a: unknown[]) => object).apply(target, args);
        return new Proxy(stub, {
          get(stubTarget, method) {
            const member = Reflect.get(stubTarget, method);
            if (typeof member !== "function" || method === "then") return member;
            return (...callArgs: unknown[]) =>
              tracer.record("do", [String(method)], undefined, () =>
                (member as (...a: unknown[]) => Promise<unknown>).apply(stubTarget, callArgs),
              );
          },
        });
      };
    },
  });
}
