import { describe, expect, it } from "vitest";
import { createApp, loadRouters } from "../src/app";
import { built, ErrorSchema } from "../src/lib/openapi";
import { call } from "./helpers";

type Registered = {
  type: string;
  route?: { method: string; path: string; responses: Record<string, { content?: Record<string, { schema: object }> }> };
};

/** The response schemas a fresh app's routes register, by "METHOD path status media type". */
async function responseSchemas() {
  const found: [string, object][] = [];
  for (const definition of createApp(await loadRouters("everything")).openAPIRegistry.definitions as Registered[]) {
    if (definition.type !== "route" || !definition.route) continue;
    const { method, path, responses } = definition.route;
    for (const [status, response] of Object.entries(responses)) {
      for (const [media, { schema }] of Object.entries(response.content ?? {})) {
        found.push([`${method.toUpperCase()} ${path} ${status} ${media}`, schema]);
      }
    }
  }
  return found;
}

describe("response schemas are built for the document only", () => {
  it("registers no built response schema when the app is made (startup builds only what validates requests)", async () => {
    const schemas = await responseSchemas();
    expect(schemas.length).toBeGreaterThan(50);
    const builtAtStartup = schemas.filter(([, schema]) => "_zod" in schema).map(([where]) => where);
    expect(builtAtStartup).toEqual([]);
  });

  it("builds them for /openapi.json, once, as the same named components", async () => {
    const doc = (await call("GET", "/openapi.json")).body as { components: { schemas: Record<string, unknown> } };
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(["Error", "User", "Chatroom", "Prompt"]),
    );
    expect(built(ErrorSchema)).toHaveProperty("_zod");
    expect(built(ErrorSchema)).toBe(built(ErrorSchema));
  });
});
