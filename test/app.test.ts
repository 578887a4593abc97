import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { documentedRequestProblems, documentedResponseProblems } from "./documented";
import { call, createChatroom, expectError, PASSWORD, uniquePhone, verifiedUser } from "./helpers";
import { expectLogged } from "./logs";

describe("app shell", () => {
  it("answers the health check at GET /", async () => {
    const res = await call("GET", "/");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ success: true, message: "Backend is LIVE" });
  });

  it("returns 404 NOT_FOUND in the error envelope for an unknown route, whatever the method", async () => {
    expectError(await call("GET", "/api/nope"), 404, "NOT_FOUND");
    expectError(await call("PUT", "/api/nope"), 404, "NOT_FOUND");
    expectError(await call("DELETE", "/api/chatroom/x/nope"), 404, "NOT_FOUND");
  });

  it("returns 405 METHOD_NOT_ALLOWED with Allow for a known path and a method it does not serve", async () => {
    for (const [method, path, allow] of [
      ["TRACE", "/", "GET, HEAD, OPTIONS"],
      ["PUT", "/api/chatroom", "GET, HEAD, POST, OPTIONS"],
      ["POST", "/api/chatroom/some-id", "GET, HEAD, PATCH, DELETE, OPTIONS"],
      ["DELETE", "/api/auth/signup", "POST, OPTIONS"],
      ["GET", "/api/billing/webhook/stripe", "POST, OPTIONS"],
      ["PATCH", "/openapi.json", "GET, HEAD, OPTIONS"],
    ] as const) {
      const res = await call(method, path);
      expectError(res, 405, "METHOD_NOT_ALLOWED");
      expect(res.headers.get("Allow"), `${method} ${path}`).toBe(allow);
    }
  });

  it("answers HEAD wherever GET is served, without a body", async () => {
    const res = await call("HEAD", "/");
    expect(res.status).toBe(200);
    expect(res.body).toBe("");
  });

  it("returns 400 VALIDATION_FAILED naming a query parameter the operation does not take", async () => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    for (const [path, name] of [
      ["/?verbose=1", "verbose"],
      ["/api/user/me?fields=id", "fields"],
      [`/api/chatroom/${room.id}/messages?limt=5`, "limt"],
      [`/api/chatroom/${room.id}/events?ticket=x&lastEventID=3`, "lastEventID"],
    ]) {
      const res = await call("GET", path as string, { token });
      expectError(res, 400, "VALIDATION_FAILED");
      expect(res.body.error.details, path).toEqual([{ path: name, message: expect.stringContaining("Unknown") }]);
    }
    const documented = await call("GET", `/api/chatroom/${room.id}/messages?limit=5`, { token });
    expect(documented.status).toBe(200);
  });

  it("still answers a CORS preflight for a method the path serves", async () => {
    const res = await call("OPTIONS", "/api/chatroom", {
      headers: { Origin: "https://app.example.com", "Access-Control-Request-Method": "POST" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("Access-Control-Allow-Methods")).toContain("POST");
  });

  it("returns 400 INVALID_JSON for a malformed JSON body", async () => {
    const res = await call("POST", "/api/auth/signup", {
      rawBody: '{"phoneNumber": "+919876543210",',
      headers: { "Content-Type": "application/json" },
    });
    expectError(res, 400, "INVALID_JSON");
  });

  it("returns 400 INVALID_JSON for a JSON content type with an empty body on a route that needs one", async () => {
    const res = await call("POST", "/api/auth/login", {
      rawBody: " ",
      headers: { "Content-Type": "application/json" },
    });
    expectError(res, 400, "INVALID_JSON");
  });

  it("returns 415 UNSUPPORTED_MEDIA_TYPE for a non-JSON body", async () => {
    const form = await call("POST", "/api/auth/signup", {
      rawBody: "phoneNumber=919876543210&password=abc12345",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    expectError(form, 415, "UNSUPPORTED_MEDIA_TYPE");
    const untyped = await call("POST", "/api/auth/login", { rawBody: '{"phoneNumber":"919876543210"}' });
    expectError(untyped, 415, "UNSUPPORTED_MEDIA_TYPE");
  });

  it("returns 413 PAYLOAD_TOO_LARGE for a body over 64 KiB, declared or streamed", async () => {
    const big = JSON.stringify({ phoneNumber: "919876543210", password: "x".repeat(70 * 1024) });
    expectError(await call("POST", "/api/auth/login", { body: JSON.parse(big) }), 413, "PAYLOAD_TOO_LARGE");

    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 80; i++) controller.enqueue(new TextEncoder().encode(" ".repeat(1024)));
        controller.close();
      },
    });
    const streamed = await call("POST", "/api/auth/login", {
      rawBody: stream,
      headers: { "Content-Type": "application/json" },
    });
    expectError(streamed, 413, "PAYLOAD_TOO_LARGE");
  });

  it("reads an over-limit streamed body to its end before answering 413, rather than cancelling it", async () => {
    // Answering while a body is half read makes `wrangler dev` drop the connection (docs/wrangler-dev-unread-body.md).
    let pulled = 0;
    let cancelled = false;
    const stream = new ReadableStream({
      pull(controller) {
        if (pulled === 200) return controller.close();
        pulled++;
        controller.enqueue(new TextEncoder().encode(" ".repeat(1024)));
      },
      cancel() {
        cancelled = true;
      },
    });
    const res = await call("POST", "/api/auth/login", {
      rawBody: stream,
      headers: { "Content-Type": "application/json" },
    });
    expectError(res, 413, "PAYLOAD_TOO_LARGE");
    expect(cancelled).toBe(false);
    expect(pulled).toBe(200);
  });

  it("ignores a body on DELETE, whatever it holds", async () => {
    const user = await verifiedUser();
    const room = await createChatroom(user.token);
    const res = await call("DELETE", `/api/chatroom/${room.id}`, {
      token: user.token,
      rawBody: "not json at all",
      headers: { "Content-Type": "text/plain" },
    });
    expect(res.status).toBe(200);
    expect(res.body.success).toBe(true);
  });

  it("accepts a body of exactly 64 KiB and validates it", async () => {
    const filler = "a1".repeat(20_000);
    const body = JSON.stringify({ phoneNumber: "919876543210", password: filler });
    const padded = body + " ".repeat(64 * 1024 - body.length);
    const res = await call("POST", "/api/auth/login", {
      rawBody: padded,
      headers: { "Content-Type": "application/json" },
    });
    expectError(res, 400, "VALIDATION_FAILED");
  });

  it("returns 400 VALIDATION_FAILED with a detail per bad field", async () => {
    const res = await call("POST", "/api/auth/signup", { body: { phoneNumber: "12", password: "short" } });
    expectError(res, 400, "VALIDATION_FAILED");
    const paths = res.body.error.details.map((d: { path: string }) => d.path);
    expect(paths).toEqual(expect.arrayContaining(["phoneNumber", "password"]));
  });

  it("gives one issue per field, never two overlapping ones", async () => {
    for (const password of ["", "short", "nodigitsatall"]) {
      const res = await call("POST", "/api/auth/signup", { body: { phoneNumber: uniquePhone(), password } });
      expectError(res, 400, "VALIDATION_FAILED");
      expect(res.body.error.details.filter((d: { path: string }) => d.path === "password")).toHaveLength(1);
    }
  });

  it("tags every response with a request id and echoes a valid incoming one", async () => {
    const generated = await call("GET", "/");
    expect(generated.headers.get("X-Request-Id")).toMatch(/^[\w-]{8,}$/);
    const echoed = await call("GET", "/", { headers: { "X-Request-Id": "client-trace-42" } });
    expect(echoed.headers.get("X-Request-Id")).toBe("client-trace-42");
  });

  it("sets the security headers and a request id on every answer, and a page's headers on what is not JSON", async () => {
    const everyAnswer = {
      "Cross-Origin-Resource-Policy": "same-origin",
      "Strict-Transport-Security": "max-age=15552000; includeSubDomains",
      "X-Content-Type-Options": "nosniff",
      "X-Frame-Options": "SAMEORIGIN",
    };
    const pages = {
      "Cross-Origin-Opener-Policy": "same-origin",
      "Origin-Agent-Cluster": "?1",
      "Referrer-Policy": "no-referrer",
      "X-DNS-Prefetch-Control": "off",
      "X-Download-Options": "noopen",
      "X-Permitted-Cross-Domain-Policies": "none",
      "X-XSS-Protection": "0",
    };
    const json = [
      await call("GET", "/"),
      await call("GET", "/nowhere"),
      await call("DELETE", "/api/auth/login"),
      await call("GET", "/api/user/me"),
    ];
    expect(json.map((res) => res.status)).toEqual([200, 404, 405, 401]);
    const notJson = [
      await call("GET", "/docs"),
      await call("OPTIONS", "/api/auth/login", { headers: { Origin: "https://app.example.com" } }),
    ];
    expect(notJson.map((res) => res.status)).toEqual([200, 204]);
    expect(notJson[0]?.headers.get("Content-Type")).toMatch(/^text\/html/);
    for (const res of [...json, ...notJson]) {
      for (const [name, value] of Object.entries(everyAnswer)) expect(res.headers.get(name), name).toBe(value);
      expect(res.headers.get("X-Request-Id")).toMatch(/^[\w-]{8,}$/);
    }
    for (const res of notJson) {
      for (const [name, value] of Object.entries(pages)) expect(res.headers.get(name), name).toBe(value);
    }
    for (const res of json) {
      for (const name of Object.keys(pages)) expect(res.headers.get(name), name).toBeNull();
    }
  });

  it("answers CORS preflights for any origin by default and only listed origins when configured", async () => {
    const preflight = { Origin: "https://app.example.com", "Access-Control-Request-Method": "POST" };
    const open = await call("OPTIONS", "/api/auth/login", { headers: preflight });
    expect(open.status).toBe(204);
    expect(open.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(open.headers.get("Access-Control-Allow-Headers")).toContain("Authorization");

    const restricted = { ...env, CORS_ORIGINS: "https://app.example.com, https://admin.example.com" };
    const allowed = await call("OPTIONS", "/api/auth/login", { headers: preflight, env: restricted });
    expect(allowed.headers.get("Access-Control-Allow-Origin")).toBe("https://app.example.com");
    const denied = await call("OPTIONS", "/api/auth/login", {
      headers: { ...preflight, Origin: "https://evil.example.net" },
      env: restricted,
    });
    expect(denied.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });

  it("gives every answer, errors included, its CORS headers", async () => {
    const origin = { Origin: "https://app.example.com" };
    const health = await call("GET", "/", { headers: origin });
    expect(health.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(health.headers.get("Access-Control-Expose-Headers")).toContain("X-Request-Id");
    const refused = await call("GET", "/api/user/me", { headers: origin });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(refused.headers.get("Access-Control-Expose-Headers")).toContain("WWW-Authenticate");

    const restricted = { ...env, CORS_ORIGINS: "https://app.example.com" };
    const listed = await call("GET", "/nowhere", { headers: origin, env: restricted });
    expect(listed.status).toBe(404);
    expect(listed.headers.get("Access-Control-Allow-Origin")).toBe("https://app.example.com");
    expect(listed.headers.get("Vary")).toContain("Origin");
    const other = await call("GET", "/", { headers: { Origin: "https://evil.example.net" }, env: restricted });
    expect(other.headers.get("Access-Control-Allow-Origin")).toBeNull();
    expect(other.headers.get("Vary")).toContain("Origin");
  });

  it("turns an unexpected failure into 500 INTERNAL with a request id and no internals", async () => {
    const brokenDb = {
      withSession() {
        return this;
      },
      getBookmark: () => null,
      prepare() {
        throw new Error("D1_ERROR: no such table: users SELECT password_hash FROM users");
      },
    } as unknown as D1Database;
    const res = await call("POST", "/api/auth/login", {
      body: { phoneNumber: uniquePhone(), password: "s3cretPass" },
      env: { ...env, DB: brokenDb },
    });
    expectError(res, 500, "INTERNAL");
    expect(res.body.error.requestId).toBe(res.headers.get("X-Request-Id"));
    expect(JSON.stringify(res.body)).not.toContain("password_hash");
    // The internals go to the log instead, under the same request id.
    expectLogged("error", /^D1_ERROR: no such table: users/, { requestId: res.body.error.requestId, error: "Error" });
  });

  it("does not leak anything when JWT_SECRET is missing", async () => {
    const res = await call("GET", "/api/user/me", { token: "a.b.c", env: { ...env, JWT_SECRET: "" } });
    expectError(res, 500, "INTERNAL");
    expect(JSON.stringify(res.body)).not.toContain("JWT_SECRET");
    expectLogged("error", "JWT_SECRET is not configured", { requestId: res.body.error.requestId });
  });
});

describe("the original assignment's paths", () => {
  it("serves every route without /api, with the same answers", async () => {
    const phoneNumber = uniquePhone();
    const signup = await call("POST", "/auth/signup", { body: { phoneNumber, password: PASSWORD } });
    expect(signup.status).toBe(201);
    const otp = (await call("POST", "/auth/send-otp", { body: { phoneNumber } })).body.otp;
    const verified = await call("POST", "/auth/verify-otp", { body: { phoneNumber, otp } });
    expect(verified.status).toBe(200);
    const token = verified.body.authToken as string;
    const me = await call("GET", "/user/me", { token });
    expect(me.body.user).toEqual((await call("GET", "/api/user/me", { token })).body.user);
    const room = await call("POST", "/chatroom", { token, body: { name: "Brief paths" } });
    expect(room.status).toBe(201);
    const sent = await call("POST", `/chatroom/${room.body.chatroom.id}/message`, {
      token,
      body: { userMessage: "Hello" },
    });
    expect(sent.status).toBe(202);
    const listed = await call("GET", "/chatroom", { token });
    expect(listed.body.chatrooms.map((r: { id: string }) => r.id)).toContain(room.body.chatroom.id);
  });

  it("reaches billing's handlers at the brief's /subscribe/pro and /subscription/status", async () => {
    const { token } = await verifiedUser();
    const status = await call("GET", "/subscription/status", { token });
    expect(status.status).toBe(200);
    expect(status.body.tier).toBe("basic");
    // Auth runs there as on /api/billing/subscribe/pro (without Stripe keys the handler would answer 503).
    expectError(await call("POST", "/subscribe/pro"), 401, "UNAUTHORIZED");
    expectError(await call("POST", "/subscribe/pro", { token }), 503, "BILLING_NOT_CONFIGURED");
  });

  it("ignores a trailing slash, on /api paths and their aliases", async () => {
    const { token } = await verifiedUser();
    expect((await call("GET", "/api/user/me/", { token })).status).toBe(200);
    expect((await call("GET", "/user/me/", { token })).status).toBe(200);
    expect((await call("POST", "/chatroom/", { token, body: { name: "Slash" } })).status).toBe(201);
    expect((await call("GET", "/subscription/status/", { token })).status).toBe(200);
    expect((await call("GET", "/docs/")).status).toBe(200);
  });

  it("answers 404 and 405 for aliases as for the canonical paths, before auth", async () => {
    const notFound = await call("GET", "/nope");
    expectError(notFound, 404, "NOT_FOUND");
    expect(notFound.body.message).toBe("No route for GET /nope");
    const wrongMethod = await call("PUT", "/chatroom/");
    expectError(wrongMethod, 405, "METHOD_NOT_ALLOWED");
    expect(wrongMethod.headers.get("Allow")).toBe("GET, HEAD, POST, OPTIONS");
    expectError(await call("GET", "/portal"), 404, "NOT_FOUND");
  });

  it("opens a chatroom's stream with a ticket on the path without /api", async () => {
    const { token } = await verifiedUser();
    const [mine, other] = [await createChatroom(token), await createChatroom(token)];
    const { ticket } = (await call("POST", `/chatroom/${mine.id}/stream-ticket`, { token })).body;
    const res = await call("GET", `/chatroom/${other.id}/events?ticket=${ticket}`);
    expectError(res, 401, "UNAUTHORIZED");
    expect(res.body.message).toMatch(/another chatroom/);
  });

  it("lists only the canonical /api paths in the OpenAPI document, and says so", async () => {
    const doc = (await call("GET", "/openapi.json")).body;
    expect(Object.keys(doc.paths).filter((path) => path !== "/" && !path.startsWith("/api/"))).toEqual([]);
    expect(doc.info.description).toContain("without the /api prefix");
    expect(doc.info.description).toContain("POST /webhook/stripe");
  });
});

describe("API documentation", () => {
  it("serves an OpenAPI 3.1 document generated from the route schemas, with bearer auth declared", async () => {
    const res = await call("GET", "/openapi.json");
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    for (const path of [
      "/api/auth/signup",
      "/api/auth/send-otp",
      "/api/auth/verify-otp",
      "/api/auth/login",
      "/api/auth/forgot-password",
      "/api/auth/reset-password",
      "/api/auth/change-password",
    ]) {
      expect(doc.paths[path]?.post, path).toBeDefined();
    }
    expect(doc.paths["/api/user/me"].get.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths["/api/auth/change-password"].post.security).toEqual([{ bearerAuth: [] }]);
    const signup = doc.paths["/api/auth/signup"].post;
    expect(Object.keys(signup.responses)).toEqual(expect.arrayContaining(["201", "400", "409", "413", "415"]));
    expect(doc.components.schemas.SignupRequest.required).toEqual(expect.arrayContaining(["phoneNumber", "password"]));
  });

  it("names every operation, says which are public, and lists a server, as redocly lint requires", async () => {
    const doc = (await call("GET", "/openapi.json")).body;
    expect(doc.servers).toEqual([expect.objectContaining({ url: "/" })]);
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods as Record<string, { operationId?: string; security?: unknown[] }>).map(([method, op]) => ({
        key: `${method.toUpperCase()} ${path}`,
        ...op,
      })),
    );
    const ids = operations.map((op) => op.operationId);
    expect(ids.filter((id) => !id)).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(operations.filter((op) => op.security === undefined).map((op) => op.key)).toEqual([]);
    expect(operations.filter((op) => op.security?.length === 0).map((op) => op.key)).toEqual([
      "POST /api/billing/webhook/stripe",
      "GET /",
      "POST /api/auth/signup",
      "POST /api/auth/send-otp",
      "POST /api/auth/verify-otp",
      "POST /api/auth/login",
      "POST /api/auth/forgot-password",
      "POST /api/auth/reset-password",
      "GET /api/models",
      "GET /api/shared/{shareId}",
      "GET /api/billing/dummy/success",
      "GET /api/billing/dummy/cancel",
    ]);
  });

  it("documents the 400 and the 500 on every operation", async () => {
    const doc = (await call("GET", "/openapi.json")).body;
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods as Record<string, { responses: object }>)) {
        expect(Object.keys(op.responses), `${method} ${path}`).toEqual(expect.arrayContaining(["400", "500"]));
      }
    }
  });

  it("documents the Stripe webhook's JSON body and its Stripe-Signature header", async () => {
    const webhook = (await call("GET", "/openapi.json")).body.paths["/api/billing/webhook/stripe"].post;
    expect(webhook.requestBody).toMatchObject({
      required: true,
      content: { "application/json": { schema: { $ref: "#/components/schemas/StripeEvent" } } },
    });
    expect(webhook.parameters).toEqual([
      expect.objectContaining({ name: "stripe-signature", in: "header", required: true }),
    ]);
  });

  it.each([
    ["a password without a digit", "/api/auth/signup", { password: "onlyLetters" }],
    ["a password without a letter", "/api/auth/signup", { password: "12345678" }],
    ["a full name of spaces", "/api/auth/signup", { fullName: "    " }],
    ["a full name of one letter in spaces", "/api/auth/signup", { fullName: " A " }],
    ["a chatroom name of spaces", "/api/chatroom", { name: "   " }],
    ["a message of whitespace", "/api/chatroom/{id}/message", { userMessage: " \n\t " }],
    ["a valid sign-up", "/api/auth/signup", { password: PASSWORD, fullName: " Al " }],
    ["a padded chatroom name", "/api/chatroom", { name: "  Trip  " }],
    ["a message with spaces around it", "/api/chatroom/{id}/message", { userMessage: "  hi  " }],
  ])("judges %s as the server does", async (_label, template, fields) => {
    const { token } = await verifiedUser();
    const room = await createChatroom(token);
    const body =
      template === "/api/auth/signup" ? { phoneNumber: uniquePhone(), password: PASSWORD, ...fields } : fields;
    const res = await call("POST", template.replace("{id}", room.id), { token, body });
    const refusedByServer = res.status === 400 && res.body.error.code === "VALIDATION_FAILED";
    const problems = await documentedRequestProblems("post", template, body);
    expect(problems.length > 0, `document: ${problems.join("; ") || "valid"}; server: ${res.status}`).toBe(
      refusedByServer,
    );
  });

  it("serves a self-contained HTML reference at /docs that loads nothing from other hosts", async () => {
    const res = await call("GET", "/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toContain("text/html");
    expect(res.body).toContain("/api/auth/verify-otp");
    expect(res.body).toContain("PHONE_NOT_VERIFIED");
    expect(res.body).not.toMatch(/<script|<link[^>]+href="http|src="http/i);
  });

  it("lists the live events a text/event-stream response can carry", async () => {
    const html: string = (await call("GET", "/docs")).body;
    const section = html.slice(html.indexOf('id="get-/api/chatroom/{id}/events"'));
    const events = [...section.slice(0, section.indexOf("</section>")).matchAll(/<code>event: (\w+)<\/code>/g)];
    expect(events.map((match) => match[1])).toEqual([
      "prompt",
      "delta",
      "retrying",
      "reply",
      "reset",
      "deleted",
      "branch",
      "chatroom",
      "revoked",
    ]);
  });

  it("shows each JSON success response's fields and an example that the response schema accepts", async () => {
    const html: string = (await call("GET", "/docs")).body;
    const doc = (await call("GET", "/openapi.json")).body as {
      paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>>;
    };
    let checked = 0;
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        const section = docsSection(html, method, path);
        const items = section.slice(section.indexOf("<h4>Responses</h4>")).split("<li><b>").slice(1);
        for (const [status, response] of Object.entries(operation.responses)) {
          if (!status.startsWith("2") || !response.content?.["application/json"]) continue;
          const label = `${method.toUpperCase()} ${path} ${status}`;
          const item = items.find((candidate) => candidate.startsWith(`${status}</b>`)) ?? "";
          const example = exampleIn(item);
          expect(example, label).toBeDefined();
          expect(await documentedResponseProblems(method, path, status, example), label).toEqual([]);
          expect(JSON.stringify(example), `${label}: a field without an example`).not.toContain('"string"');
          for (const field of fieldNames(example))
            expect(item, `${label}: ${field}`).toContain(`<code>${field}</code>`);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  it("shows an example JSON body that the operation accepts, with the password rule where a password is set", async () => {
    const html: string = (await call("GET", "/docs")).body;
    const doc = (await call("GET", "/openapi.json")).body as {
      paths: Record<string, Record<string, { requestBody?: { content?: Record<string, unknown> } }>>;
    };
    let checked = 0;
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        if (!operation.requestBody?.content?.["application/json"]) continue;
        const section = docsSection(html, method, path);
        const example = exampleIn(
          section.slice(section.indexOf("<h4>JSON body</h4>"), section.indexOf("<h4>Responses</h4>")),
        );
        expect(await documentedRequestProblems(method, path, example), path).toEqual([]);
        expect(JSON.stringify(example), `${path}: a field without an example`).not.toContain('"string"');
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(10);
    for (const path of ["/api/auth/signup", "/api/auth/reset-password", "/api/auth/change-password"]) {
      expect(docsSection(html, "post", path), path).toContain("8–72 characters with at least one letter and one digit");
    }
  });

  it("groups the /docs operations under their tags, in the document's tag order", async () => {
    const html: string = (await call("GET", "/docs")).body;
    const headings = [...html.matchAll(/<h2>([^<]+)<\/h2>/g)].map((match) => match[1]);
    expect(headings).toEqual([
      "Health",
      "Auth",
      "User",
      "Chatrooms",
      "Messages",
      "Live replies",
      "Billing",
      "Your data",
    ]);
    expect(html.indexOf('id="post-/api/billing/webhook/stripe"')).toBeGreaterThan(
      html.indexOf('id="post-/api/auth/signup"'),
    );
  });
});

describe("D1 sessions", () => {
  it("answer with a bookmark that, sent back, reads the request's own writes", async () => {
    const { token } = await verifiedUser();
    const created = await call("POST", "/api/chatroom", { token, body: { name: "Bookmarked" } });
    const bookmark = created.headers.get("x-d1-bookmark");
    expect(bookmark).toMatch(/^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/);
    const list = await call("GET", "/api/chatroom", { token, headers: { "x-d1-bookmark": bookmark ?? "" } });
    expect(list.status).toBe(200);
    expect(list.body.chatrooms.map((room: { name: string }) => room.name)).toContain("Bookmarked");
    // Bookmarks only move forward.
    expect((list.headers.get("x-d1-bookmark") ?? "") >= (bookmark ?? "")).toBe(true);
  });

  it("ignore a bookmark that is not one (the request starts at the primary)", async () => {
    const { token } = await verifiedUser();
    for (const bookmark of ["garbage", "'; DROP TABLE users; --", "x".repeat(500)]) {
      const res = await call("GET", "/api/user/me", { token, headers: { "x-d1-bookmark": bookmark } });
      expect(res.status).toBe(200);
    }
  });
});

/** One operation's part of the /docs page. */
function docsSection(html: string, method: string, path: string): string {
  const start = html.indexOf(`id="${method}-${path}"`);
  expect(start, `${method} ${path} in /docs`).toBeGreaterThan(-1);
  return html.slice(start, html.indexOf("</section>", start));
}

/** The first example in a piece of the /docs page, parsed. */
function exampleIn(fragment: string): unknown {
  const code = /<pre class="example"><code>([\s\S]*?)<\/code><\/pre>/.exec(fragment)?.[1];
  return code === undefined
    ? undefined
    : JSON.parse(code.replace(/&#(\d+);/g, (_, char: string) => String.fromCharCode(Number(char))));
}

/** Every property name in a JSON value, at any depth. */
function fieldNames(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(fieldNames);
  if (!value || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([name, child]) => [name, ...fieldNames(child)]);
}
