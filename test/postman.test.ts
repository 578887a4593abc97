import { describe, expect, it } from "vitest";
import committed from "../postman/gemini-backend.postman_collection.json";
import { generateCollection, type OpenApiDocument } from "../tools/postman/generate";
import { call } from "./helpers";

describe("Postman collection", () => {
  it("is exactly what the served OpenAPI document generates (run `npm run postman` after API changes)", async () => {
    const doc = (await call("GET", "/openapi.json")).body as OpenApiDocument;
    expect(committed).toEqual(generateCollection(doc));
  });

  it("covers every operation but the Stripe webhook and the endless event stream, with baseURL and authToken variables", async () => {
    const doc = (await call("GET", "/openapi.json")).body as OpenApiDocument;
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    );
    const requests = new Set(
      committed.item.flatMap((folder) =>
        folder.item.map(
          (item) =>
            `${item.request.method} /${item.request.url.path
              .join("/")
              .replace(/\{\{chatroomId\}\}/, "{id}")
              .replace(/\{\{(promptId|replyId)\}\}/, "{messageId}")
              .replace(/\{\{shareId\}\}/, "{shareId}")}`,
        ),
      ),
    );
    expect(operations.filter((op) => !requests.has(op.replace(/ \/$/, " /")))).toEqual([
      "POST /api/billing/webhook/stripe",
      "GET /api/chatroom/{id}/events",
    ]);
    expect(committed.variable.map((v) => v.key)).toEqual(expect.arrayContaining(["baseURL", "authToken"]));
  });

  it("runs the flow in the documented order", () => {
    expect(committed.item[0]?.item.map((item) => item.name)).toEqual([
      "1. Sign up",
      "2. Send OTP",
      "3. Verify OTP (stores authToken)",
      "4. Me",
      "5. Create chatroom",
      "6. List chatrooms",
      "7. Send prompt",
      "8. Wait for the reply",
      "9. Subscription status",
      "10. Subscribe to Pro (open the url to pay)",
    ]);
  });
});
