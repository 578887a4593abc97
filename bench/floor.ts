// The binding floor: for a traced request, exactly the same binding calls (same KV keys, same D1
// statements and parameters, in the same order and overlap) and the same JWT check, and nothing else.
// Our throughput as a share of the floor's is what our own code costs on top of its bindings.
import { jwtVerify } from "jose";
import type { TracedCall } from "./tracing-bindings";

export type FloorPlan = { calls: TracedCall[] };

async function replay(env: Env, call: TracedCall): Promise<unknown> {
  switch (call.kind) {
    case "d1": {
      const statements = call.what.map((sql, i) => env.DB.prepare(sql).bind(...(call.params?.[i] ?? [])));
      return call.batch ? env.DB.batch(statements) : statements[0]?.all();
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
  for (const level of levels) {
    await Promise.all(plan.calls.filter((call) => call.level === level).map((call) => replay(env, call)));
  }
  return Response.json({ success: true, message: "floor" });
}
