import { type OpenApiDocument, type OpenApiSchema, resolveSchema } from "../../src/lib/openapi-document";

/**
 * Builds the Postman collection (v2.1) from the OpenAPI document the Worker serves. The requests,
 * bodies and parameters come from the document; this file only adds what OpenAPI cannot say: the
 * order of the happy-path flow, which collection variables each step stores, and its checks.
 */

type Schema = OpenApiSchema;

export type { OpenApiDocument };

type Script = { listen: "prerequest" | "test"; script: { type: "text/javascript"; exec: string[] } };
type PostmanItem = {
  name: string;
  event?: Script[];
  request: {
    method: string;
    auth?: { type: "noauth" };
    header: { key: string; value: string }[];
    url: {
      raw: string;
      host: string[];
      path: string[];
      query?: { key: string; value: string; description?: string }[];
    };
    body?: { mode: "raw"; raw: string; options: { raw: { language: "json" } } };
    description?: string;
  };
};
export type PostmanCollection = {
  info: { name: string; description: string; schema: string };
  auth: { type: "bearer"; bearer: { key: string; value: string; type: string }[] };
  variable: { key: string; value: string }[];
  item: { name: string; description: string; item: PostmanItem[] }[];
};

/** Which collection variable fills each body field and path parameter. */
const FIELD_VARIABLES: Record<string, string> = {
  phoneNumber: "{{phoneNumber}}",
  password: "{{password}}",
  currentPassword: "{{password}}",
  newPassword: "{{newPassword}}",
  otp: "{{otp}}",
};
const PATH_VARIABLES: Record<string, string> = { id: "chatroomId", messageId: "promptId", shareId: "shareId" };

const expectStatus = (...codes: number[]) => [
  `pm.test("answers ${codes.join(" or ")}", () => pm.expect(pm.response.code).to.be.oneOf([${codes.join(", ")}]));`,
  `pm.test("uses the envelope", () => pm.expect(pm.response.json()).to.have.property("success", pm.response.code < 400));`,
];
const store = (variable: string, expression: string) => `pm.collectionVariables.set("${variable}", ${expression});`;

type Step = {
  key: string;
  name: string;
  tests: string[];
  prerequest?: string[];
  query?: Record<string, string>;
  body?: Record<string, string>;
  /** Path parameters filled from other variables than PATH_VARIABLES says (a reply's id for `messageId`). */
  pathVariables?: Record<string, string>;
};

/** The happy path, in the order it must run. */
const FLOW: Step[] = [
  {
    key: "post /api/auth/signup",
    name: "1. Sign up",
    prerequest: [
      "// A fresh phone number per run, so the flow can be run again and again.",
      `${store("phoneNumber", '"+91" + String(Date.now()).slice(-10)')}`,
      `${store("password", '"s3cretPass"')}`,
      `${store("newPassword", '"n3wSecret99"')}`,
    ],
    tests: [...expectStatus(201), store("userId", "pm.response.json().user.id")],
  },
  {
    key: "post /api/auth/send-otp",
    name: "2. Send OTP",
    tests: [...expectStatus(200), store("otp", "pm.response.json().otp")],
  },
  {
    key: "post /api/auth/verify-otp",
    name: "3. Verify OTP (stores authToken)",
    tests: [...expectStatus(200), store("authToken", "pm.response.json().authToken")],
  },
  {
    key: "get /api/user/me",
    name: "4. Me",
    tests: [
      ...expectStatus(200),
      'pm.test("is Basic", () => pm.expect(pm.response.json().user.tier).to.eql("basic"));',
    ],
  },
  {
    key: "post /api/chatroom",
    name: "5. Create chatroom",
    body: { name: "Postman {{$timestamp}}" },
    tests: [...expectStatus(201), store("chatroomId", "pm.response.json().chatroom.id")],
  },
  {
    key: "get /api/chatroom",
    name: "6. List chatrooms",
    tests: [
      ...expectStatus(200),
      'pm.test("lists the new room", () => pm.expect(pm.response.json().chatrooms.map((r) => r.id)).to.include(pm.collectionVariables.get("chatroomId")));',
    ],
  },
  {
    key: "post /api/chatroom/{id}/message",
    name: "7. Send prompt",
    body: { userMessage: "Explain Cloudflare Queues in two sentences." },
    tests: [...expectStatus(202), store("promptId", "pm.response.json().prompt.id")],
  },
  {
    key: "get /api/chatroom/{id}/message/{messageId}",
    name: "8. Wait for the reply",
    query: { wait: "25" },
    tests: [
      ...expectStatus(200),
      'pm.test("the prompt is answered", () => pm.expect(pm.response.json().prompt.status).to.not.eql("pending"));',
      store("replyId", "pm.response.json().prompt.reply && pm.response.json().prompt.reply.id"),
    ],
  },
  { key: "get /api/billing/subscription/status", name: "9. Subscription status", tests: expectStatus(200) },
  {
    key: "post /api/billing/subscribe/pro",
    name: "10. Subscribe to Pro (open the url to pay)",
    tests: [...expectStatus(200), store("checkoutUrl", "pm.response.json().url")],
  },
];

/** The other endpoints, in an order that keeps every step valid (the password steps revoke tokens). */
const MORE: Step[] = [
  { key: "get /", name: "Health check", tests: ['pm.test("is live", () => pm.expect(pm.response.code).to.eql(200));'] },
  { key: "get /api/chatroom/{id}", name: "Get chatroom with last messages", tests: expectStatus(200) },
  {
    key: "get /api/models",
    name: "Models a chatroom may use",
    tests: [
      ...expectStatus(200),
      'pm.test("has one default", () => pm.expect(pm.response.json().models.filter((m) => m.default)).to.have.length(1));',
    ],
  },
  {
    key: "get /api/search",
    name: "Search your messages",
    query: { q: "cloudflare queues" },
    tests: [
      ...expectStatus(200),
      'pm.test("finds the prompt sent", () => pm.expect(pm.response.json().results.map((r) => r.messageId)).to.include(pm.collectionVariables.get("promptId")));',
    ],
  },
  {
    key: "get /api/user/usage",
    name: "Your usage per day",
    query: { days: "7" },
    tests: [...expectStatus(200), 'pm.test("has 7 days", () => pm.expect(pm.response.json().days).to.have.length(7));'],
  },
  {
    key: "get /api/user/export",
    name: "Export your data (one a minute: 429 EXPORT_RATE_LIMITED otherwise)",
    tests: [
      'pm.test("answers 200 or 429", () => pm.expect(pm.response.code).to.be.oneOf([200, 429]));',
      'if (pm.response.code === 200) pm.test("is the account", () => pm.expect(pm.response.json().user.id).to.eql(pm.collectionVariables.get("userId")));',
    ],
  },
  {
    key: "post /api/chatroom/{id}/share",
    name: "Share the chatroom (409 NOTHING_TO_SHARE until a reply has completed)",
    tests: [
      ...expectStatus(201, 409),
      'if (pm.response.code === 201) pm.collectionVariables.set("shareId", pm.response.json().share.id);',
    ],
  },
  { key: "get /api/chatroom/{id}/shares", name: "The chatroom's shared links", tests: expectStatus(200) },
  {
    key: "get /api/shared/{shareId}",
    name: "Read the shared conversation, with no token",
    tests: expectStatus(200, 404),
  },
  {
    key: "delete /api/chatroom/{id}/share/{shareId}",
    name: "Revoke the shared link",
    tests: expectStatus(200, 404),
  },
  {
    key: "get /api/chatroom/{id}/messages",
    name: "Page through messages",
    query: { limit: "50" },
    tests: expectStatus(200),
  },
  {
    key: "put /api/chatroom/{id}/message/{messageId}/feedback",
    name: "Rate the reply",
    pathVariables: { messageId: "replyId" },
    body: { rating: "up", comment: "Clear and short" },
    tests: [
      ...expectStatus(200),
      'pm.test("the reply carries the rating", () => pm.expect(pm.response.json().reply.feedback.rating).to.eql("up"));',
    ],
  },
  {
    key: "delete /api/chatroom/{id}/message/{messageId}/feedback",
    name: "Remove the reply's rating",
    pathVariables: { messageId: "replyId" },
    tests: [
      ...expectStatus(200),
      'pm.test("the rating is gone", () => pm.expect(pm.response.json().reply.feedback).to.eql(null));',
    ],
  },
  {
    key: "post /api/chatroom/{id}/message/{messageId}/regenerate",
    name: "Regenerate the reply (a new reply version; 409 NOT_COMPLETED unless the prompt completed)",
    tests: expectStatus(202, 409),
  },
  {
    key: "post /api/chatroom/{id}/message/{messageId}/edit",
    name: "Edit the prompt (a new version of it, answered like a send)",
    body: { userMessage: "Explain Cloudflare Queues in one sentence." },
    tests: [
      ...expectStatus(202),
      'pm.test("is a second version of the first prompt", () => pm.expect(pm.response.json().prompt.version).to.include({ index: 2, count: 2, previousId: pm.collectionVariables.get("promptId") }));',
      store("editedPromptId", "pm.response.json().prompt.id"),
    ],
  },
  {
    key: "put /api/chatroom/{id}/active-branch",
    name: "Switch back to the first version",
    body: { messageId: "{{promptId}}" },
    tests: [
      ...expectStatus(200),
      'pm.test("shows the first version again", () => pm.expect(pm.response.json().messages[0].id).to.eql(pm.collectionVariables.get("promptId")));',
    ],
  },
  {
    key: "get /api/chatroom/{id}/message/{messageId}/stream",
    name: "Stream a prompt (SSE: prompt, deltas, reply; ends at once for an answered prompt)",
    tests: [
      'pm.test("answers 200 text/event-stream", () => { pm.expect(pm.response.code).to.eql(200); pm.expect(pm.response.headers.get("Content-Type")).to.include("text/event-stream"); });',
      'pm.test("starts with the prompt and ends with its reply", () => { const text = pm.response.text(); pm.expect(text.indexOf("event: prompt")).to.be.at.least(0); pm.expect(text.lastIndexOf("event: reply")).to.be.greaterThan(text.indexOf("event: prompt")); });',
    ],
  },
  {
    key: "post /api/chatroom/{id}/stream-ticket",
    name: "Stream ticket (for EventSource: ?ticket= on events and …/stream)",
    tests: [...expectStatus(200), store("ticket", "pm.response.json().ticket")],
  },
  {
    key: "post /api/chatroom/{id}/message/{messageId}/cancel",
    name: "Cancel a prompt (409 NOT_PENDING once it has settled)",
    tests: expectStatus(200, 409),
  },
  {
    key: "patch /api/chatroom/{id}",
    name: "Rename chatroom and give it a system instruction",
    body: { name: "Renamed {{$timestamp}}", systemInstruction: "Answer in two sentences at most." },
    tests: [
      ...expectStatus(200),
      'pm.test("keeps the instruction", () => pm.expect(pm.response.json().chatroom.systemInstruction).to.eql("Answer in two sentences at most."));',
    ],
  },
  {
    key: "post /api/chatroom/{id}/message/{messageId}/retry",
    name: "Retry a failed prompt (409 NOT_FAILED unless it failed)",
    tests: expectStatus(202, 409),
  },
  {
    key: "post /api/billing/portal",
    name: "Billing portal (404 NO_SUBSCRIPTION until subscribed)",
    tests: expectStatus(200, 404),
  },
  { key: "get /api/billing/dummy/success", name: "Checkout success page", tests: expectStatus(200) },
  { key: "get /api/billing/dummy/cancel", name: "Checkout cancel page", tests: expectStatus(200) },
  {
    key: "post /api/auth/login",
    name: "Log in with password",
    tests: [...expectStatus(200), store("authToken", "pm.response.json().authToken")],
  },
  { key: "post /api/auth/logout", name: "Log out (ends this token)", tests: expectStatus(200) },
  {
    key: "post /api/auth/login",
    name: "Log in again after logging out",
    tests: [...expectStatus(200), store("authToken", "pm.response.json().authToken")],
  },
  { key: "post /api/auth/logout-all", name: "Log out everywhere (ends every token)", tests: expectStatus(200) },
  {
    key: "post /api/auth/login",
    name: "Log in again after logging out everywhere",
    tests: [...expectStatus(200), store("authToken", "pm.response.json().authToken")],
  },
  {
    key: "post /api/auth/change-password",
    name: "Change password (stores the fresh token)",
    tests: [
      ...expectStatus(200),
      store("authToken", "pm.response.json().authToken"),
      store("password", 'pm.collectionVariables.get("newPassword")'),
      store("newPassword", '"r3setSecret77"'),
    ],
  },
  {
    key: "post /api/auth/forgot-password",
    name: "Forgot password (reset OTP)",
    tests: [...expectStatus(200), store("otp", "pm.response.json().otp")],
  },
  {
    key: "post /api/auth/reset-password",
    name: "Reset password (revokes earlier tokens)",
    tests: [...expectStatus(200), store("password", 'pm.collectionVariables.get("newPassword")')],
  },
  {
    key: "post /api/auth/login",
    name: "Log in with the reset password",
    tests: [...expectStatus(200), store("authToken", "pm.response.json().authToken")],
  },
  { key: "delete /api/chatroom/{id}", name: "Delete chatroom", tests: expectStatus(200) },
  {
    key: "post /api/user/delete-account",
    name: "Delete account (last: the run's account and everything in it go)",
    tests: [...expectStatus(200), 'pm.test("is deleted", () => pm.expect(pm.response.json().deleted).to.eql(true));'],
  },
];

/**
 * Left out: the Stripe webhook (Stripe calls it, signed with the webhook secret; see the README to
 * forward events), and the chatroom's event stream, which stays open for as long as the client does
 * (see the README's curl and EventSource examples).
 */
const EXCLUDED = new Set(["post /api/billing/webhook/stripe", "get /api/chatroom/{id}/events"]);

function exampleFor(schema: Schema | undefined, doc: OpenApiDocument): unknown {
  const s = resolveSchema(schema, doc);
  if (s.example !== undefined) return s.example;
  if (s.default !== undefined) return s.default;
  if (s.enum?.length) return s.enum[0];
  if (s.anyOf?.length)
    return exampleFor(
      s.anyOf.find((variant) => resolveSchema(variant, doc).type !== "null"),
      doc,
    );
  if (s.properties) {
    return Object.fromEntries(
      Object.entries(s.properties)
        .filter(([name]) => s.required?.includes(name) || name in FIELD_VARIABLES)
        .map(([name, child]) => [name, FIELD_VARIABLES[name] ?? exampleFor(child, doc)]),
    );
  }
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  return type === "number" || type === "integer" ? 0 : type === "boolean" ? false : "";
}

function buildItem(doc: OpenApiDocument, step: Step): PostmanItem {
  const [method = "get", path = "/"] = step.key.split(" ");
  const operation = doc.paths[path]?.[method];
  if (!operation) throw new Error(`The OpenAPI document has no ${step.key}`);
  const segments = path
    .split("/")
    .filter(Boolean)
    .map((segment) =>
      segment.replace(
        /^\{(\w+)\}$/,
        (_, name: string) => `{{${step.pathVariables?.[name] ?? PATH_VARIABLES[name] ?? name}}}`,
      ),
    );
  const query = Object.entries(step.query ?? {}).map(([key, value]) => ({ key, value }));
  const raw = `{{baseURL}}/${segments.join("/")}${query.length ? `?${query.map((q) => `${q.key}=${q.value}`).join("&")}` : ""}`;
  const bodySchema = operation.requestBody?.content?.["application/json"]?.schema;
  const body = bodySchema ? { ...(exampleFor(bodySchema, doc) as object), ...step.body } : undefined;
  const event: Script[] = [{ listen: "test", script: { type: "text/javascript", exec: step.tests } }];
  if (step.prerequest)
    event.unshift({ listen: "prerequest", script: { type: "text/javascript", exec: step.prerequest } });
  return {
    name: step.name,
    event,
    request: {
      method: method.toUpperCase(),
      ...(operation.security?.length ? {} : { auth: { type: "noauth" as const } }),
      header: body ? [{ key: "Content-Type", value: "application/json" }] : [],
      url: { raw, host: ["{{baseURL}}"], path: segments, ...(query.length ? { query } : {}) },
      ...(body
        ? {
            body: {
              mode: "raw" as const,
              raw: JSON.stringify(body, null, 2),
              options: { raw: { language: "json" as const } },
            },
          }
        : {}),
      description: [operation.summary, operation.description].filter(Boolean).join("\n\n"),
    },
  };
}

export function generateCollection(doc: OpenApiDocument): PostmanCollection {
  const covered = new Set([...FLOW, ...MORE].map((step) => step.key));
  const missing = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.keys(methods)
      .map((method) => `${method} ${path}`)
      .filter((key) => !covered.has(key) && !EXCLUDED.has(key)),
  );
  if (missing.length) throw new Error(`Add these operations to the Postman flow: ${missing.join(", ")}`);
  return {
    info: {
      name: doc.info.title,
      description:
        "Generated from /openapi.json by `npm run postman`. Run it in order: the first folder is the whole flow " +
        "(signup → OTP → token → chatroom → prompt → reply → billing). Set `baseURL` (default http://localhost:8787); " +
        "`authToken` and the ids are filled in by the requests' test scripts. The Stripe webhook is not included: " +
        "Stripe calls it, signed.",
      schema: "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
    },
    auth: { type: "bearer", bearer: [{ key: "token", value: "{{authToken}}", type: "string" }] },
    variable: [
      { key: "baseURL", value: "http://localhost:8787" },
      { key: "authToken", value: "" },
      { key: "phoneNumber", value: "" },
      { key: "password", value: "s3cretPass" },
      { key: "newPassword", value: "n3wSecret99" },
      { key: "otp", value: "" },
      { key: "userId", value: "" },
      { key: "chatroomId", value: "" },
      { key: "promptId", value: "" },
      { key: "replyId", value: "" },
      { key: "ticket", value: "" },
      { key: "checkoutUrl", value: "" },
    ],
    item: [
      { name: "Flow", description: "The happy path, in order.", item: FLOW.map((step) => buildItem(doc, step)) },
      {
        name: "More endpoints",
        description: "Everything else, in an order that keeps each request valid.",
        item: MORE.map((step) => buildItem(doc, step)),
      },
    ],
  };
}
