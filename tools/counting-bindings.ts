/**
 * Wrappers that count what a request does to its bindings: every executed D1 statement and every
 * batch is one round trip (a network hop in production); every KV call is one operation. Used by the
 * tests' round-trip assertions and by the benchmark's instrumented build; never by the product.
 */
export type BindingCounter = { roundTrips: number; kvOperations: number };

export function countingD1(d1: D1Database, counter: BindingCounter = { roundTrips: 0, kvOperations: 0 }) {
  const originals = new WeakMap<object, D1PreparedStatement>();
  const wrap = (statement: D1PreparedStatement): D1PreparedStatement => {
    const proxy = new Proxy(statement, {
      get(target, property) {
        if (property === "bind") return (...values: unknown[]) => wrap(target.bind(...values));
        if (property === "first" || property === "run" || property === "all" || property === "raw") {
          return (...args: unknown[]) => {
            counter.roundTrips += 1;
            return (target[property] as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    originals.set(proxy, statement);
    return proxy;
  };
  // A D1 database or one of its sessions (withSession): both prepare and batch the same way.
  const wrapDatabase = <T extends object>(database: T): T =>
    new Proxy(database, {
      get(target, property) {
        const d1Like = target as unknown as D1Database;
        if (property === "withSession")
          return (...args: unknown[]) =>
            wrapDatabase((d1Like.withSession as (...a: unknown[]) => object).apply(target, args));
        if (property === "prepare") return (query: string) => wrap(d1Like.prepare(query));
        if (property === "batch") {
          return (statements: D1PreparedStatement[]) => {
            counter.roundTrips += 1;
            return d1Like.batch(statements.map((statement) => originals.get(statement) ?? statement));
          };
        }
        if (property === "exec") {
          return (query: string) => {
            counter.roundTrips += 1;
            return d1Like.exec(query);
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  return { binding: wrapDatabase(d1), counter };
}

export function countingKv(kv: KVNamespace, counter: BindingCounter = { roundTrips: 0, kvOperations: 0 }) {
  const binding = new Proxy(kv, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        counter.kvOperations += 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { binding, counter };
}
