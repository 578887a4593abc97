// The benchmark's instrumented build: the real Worker, with its D1 and KV bindings wrapped to count
// round trips and operations, reported in response headers. Never deployed.
import worker from "../src/index";
import { type BindingCounter, countingD1, countingKv } from "../tools/counting-bindings";

export { ChatroomHub } from "../src/index";

export default {
  async fetch(request, env, ctx) {
    const counter: BindingCounter = { roundTrips: 0, kvOperations: 0 };
    const counted = { ...env, DB: countingD1(env.DB, counter).binding, CACHE: countingKv(env.CACHE, counter).binding };
    const response = await worker.fetch(request, counted, ctx);
    const headers = new Headers(response.headers);
    headers.set("X-Bench-D1", String(counter.roundTrips));
    headers.set("X-Bench-KV", String(counter.kvOperations));
    return new Response(response.body, { status: response.status, headers });
  },
  queue: worker.queue,
} satisfies ExportedHandler<Env, { promptId: string }>;
