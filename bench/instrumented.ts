// The benchmark's instrumented build: the real Worker, with its bindings wrapped to trace every round
// trip (bench/tracing-bindings.ts) and, when BENCH_LATENCY is set, to delay each by the latency model's
// figure. Counts go out in response headers; `GET /__bench/trace` gives the last request's calls and
// `GET /__bench/kv-writes` every KV write since the last `?reset`. A request with `X-Bench-Untraced`
// runs the Worker on its bindings as they are (load runs measure our code, not the tracer). Never deployed.
import worker from "../src/index";
import { type FloorPlan, floor } from "./floor";
import { type LatencyModel, Tracer, tracedD1, tracedDurableObjects, tracedKv, tracedQueue } from "./tracing-bindings";

export { ChatroomHub } from "../src/index";

type BenchEnv = Env & { BENCH_LATENCY?: string };

/** The header that skips tracing, for load runs (the floor comparison). */
const UNTRACED = "X-Bench-Untraced";

let tracer: Tracer | undefined;
let lastTrace: Tracer["calls"] = [];
/** Floor plans by name: `POST /__bench/floor/<name>` keeps the last request's trace as one. */
const floorPlans = new Map<string, FloorPlan>();

function traced(env: BenchEnv): Env {
  tracer ??= new Tracer(env.BENCH_LATENCY ? (JSON.parse(env.BENCH_LATENCY) as LatencyModel) : {});
  return {
    ...env,
    DB: tracedD1(env.DB, tracer),
    CACHE: tracedKv(env.CACHE, tracer),
    PROMPT_QUEUE: tracedQueue(env.PROMPT_QUEUE, tracer),
    CHATROOM_HUB: tracedDurableObjects(env.CHATROOM_HUB, tracer),
  };
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/__bench/trace") return Response.json(lastTrace);
    const planName = /^\/__bench\/floor\/(.+)$/.exec(url.pathname)?.[1];
    if (planName && request.method === "POST") {
      floorPlans.set(planName, { calls: lastTrace });
      return Response.json({ calls: lastTrace.length });
    }
    const floorName = /^\/__floor\/(.+)$/.exec(url.pathname)?.[1];
    if (floorName) {
      const plan = floorPlans.get(floorName);
      return plan ? floor(request, env, plan) : new Response("no such floor plan", { status: 404 });
    }
    if (url.pathname === "/__bench/kv-writes") {
      const writes = tracer?.kvWrites ?? [];
      if (url.searchParams.has("reset") && tracer) tracer.kvWrites = [];
      return Response.json(writes);
    }
    if (request.headers.has(UNTRACED)) return worker.fetch(request, env, ctx);
    const wrapped = traced(env);
    tracer?.reset();
    const response = await worker.fetch(request, wrapped, ctx);
    // What the request did before answering; what waitUntil does afterwards is not on its path.
    const calls = [...(tracer?.calls ?? [])];
    lastTrace = calls;
    const headers = new Headers(response.headers);
    headers.set("X-Bench-D1", String(calls.filter((c) => c.kind === "d1").length));
    headers.set("X-Bench-KV", String(calls.filter((c) => c.kind.startsWith("kv.")).length));
    headers.set("X-Bench-Trips", String(calls.length));
    headers.set(
      "X-Bench-D1-Statements",
      String(calls.filter((c) => c.kind === "d1").reduce((sum, c) => sum + c.what.length, 0)),
    );
    // The critical path: levels of the calls the answer waited for. A call still in flight when the answer
    // is ready was handed to waitUntil (with the latency model on, every call takes long enough to tell).
    headers.set("X-Bench-Sequential", String(Math.max(0, ...calls.filter((c) => c.done).map((c) => c.level))));
    return new Response(response.body, { status: response.status, headers, webSocket: response.webSocket });
  },
  queue: (batch, env) => worker.queue(batch, traced(env)),
  scheduled: worker.scheduled,
} satisfies ExportedHandler<BenchEnv, { promptId: string }>;
