// The binding floor: for a traced request, exactly the same binding calls (same KV keys, same D1
// statements and parameters, in the same D1 session kind, order and overlap) and the same JWT check,
// and nothing else.
// Our throughput as a share of the floor's is what our own code costs on top of its bindings.
import { jwtVerify } from "jose";
import type { TracedCall } from "./tracing-bindings";

export type FloorPlan = { calls: TracedCall[] };

/** The request's D1 sessions by constraint, opened on first use as the Worker opens its one. */
type Sessions = Map<string, D1DatabaseSession>;

async function replay(env: Env, call: TracedCall, sessions: Sessions): Promise<unknown> {
  switch (call.kind) {
    case "d1": {
      let db: D1Database | D1DatabaseSession = env.DB;
      if (call.session !== undefined) {
        db = sessions.get(call.session) ?? env.DB.withSession(call.session);
        sessions.set(call.session, db);
      }
      const statements = call.what.map((sql, i) => db.prepare(sql).bind(...(call.params?.[i] ?? [])));
      return call.batch ? db.batch(statements) : statements[0]?.all();
    }
    case "kv.get":
      return call.batch ? env.CACHE.get(call.what) : env.CACHE.get(call.what[0] ?? "");
    case "kv.put":
      return env.CACHE.put(call.what[0] ?? "", "floor");
    case "kv.delete":
      return env.CACHE.delete(call.what[0] ?? "");
    default:
      // Queue sends and Durable Object calls are not on the hot reads the floor is measured for.
      return undefined;
  }
}

/** The JWT key, imported once per isolate as the Worker's is. */
let key: Promise<CryptoKey> | undefined;

export async function floor(request: Request, env: Env, plan: FloorPlan): Promise<Response> {
  const token = /^Bearer (.+)$/.exec(request.headers.get("Authorization") ?? "")?.[1] ?? "";
  key ??= crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(env.JWT_SECRET),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  await jwtVerify(token, await key, {
    algorithms: ["HS256"],
    requiredClaims: ["exp", "iat", "sub"],
  });
  const levels = [...new Set(plan.calls.map((call) => call.level))].sort((a, b) => a - b);
  const sessions: Sessions = new Map();
  for (const level of levels) {
    await Promise.all(plan.calls.filter((call) => call.level === level).map((call) => replay(env, call, sessions)));
  }
  return Response.json({ success: true, message: "floor" });
}
