import { createExecutionContext, env } from "cloudflare:test";
import { type Schema, Validator } from "@cfworker/json-schema";
import worker from "../src/index";
import { canonicalPath } from "../src/lib/canonical-path";

/**
 * Checks answers against the OpenAPI document the Worker serves: the status must be documented for the
 * operation, and the body must match that response's schema (each event, for text/event-stream). A
 * path the document does not list may only answer 404, and a listed path with a method it does not
 * list only 405 with `Allow`, both in the error envelope. Objects may not carry fields the document
 * does not list.
 */

type Operation = { responses: Record<string, { content?: Record<string, { schema: Schema }> }> };
type Document = {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
};

type Checked = { status: number; headers: Headers; text: string };

/** Served by the Worker but not operations of the API: the document itself and its HTML rendering. */
const SELF_DESCRIPTION = new Set(["/openapi.json", "/docs"]);
/** The playground's page and files (Static Assets through the Worker): pages, not operations. */
/** Pages, not API operations: the playground and shared conversations (/s/:shareId). */
const isPlayground = (pathname: string) =>
  pathname === "/playground" || pathname.startsWith("/playground/") || pathname.startsWith("/s/");

let loaded:
  | Promise<{ doc: Document; openSchemas: Record<string, Schema>; templates: { path: string; pattern: RegExp }[] }>
  | undefined;
const validators = new WeakMap<object, Validator>();

function load() {
  loaded ??= (async () => {
    const response = await worker.fetch(new Request("http://localhost/openapi.json"), env, createExecutionContext());
    // JSON Schema tools resolve "#/…" against the schema they validate with, so the components become $defs.
    // Examples are left out: the validator reads an example's `id` field as a schema id.
    const doc = JSON.parse((await response.text()).replaceAll('"#/components/schemas/', '"#/$defs/'), (key, value) =>
      key === "example" ? undefined : value,
    ) as Document;
    const openSchemas = doc.components.schemas;
    const extended = extendedSchemas(openSchemas);
    doc.components.schemas = Object.fromEntries(
      Object.entries(openSchemas).map(([name, schema]) => [name, closeObjects(schema, extended.has(name)) as Schema]),
    );
    const templates = Object.keys(doc.paths).map((path) => ({
      path,
      pattern: new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\\?\{\w+\\?\}/g, "[^/]+")}$`),
    }));
    return { doc, openSchemas, templates };
  })();
  return loaded;
}

/** The component schemas other schemas extend with `allOf`: the extending schema closes those. */
function extendedSchemas(schemas: Record<string, Schema>): Set<string> {
  const extended = new Set<string>();
  const find = (node: unknown) => {
    if (Array.isArray(node)) return node.forEach(find);
    if (!node || typeof node !== "object") return;
    const record = node as Record<string, unknown>;
    for (const member of (record.allOf as Schema[] | undefined) ?? []) {
      if (typeof member.$ref === "string") extended.add(member.$ref.replace("#/$defs/", ""));
    }
    Object.values(record).forEach(find);
  };
  find(schemas);
  return extended;
}

/**
 * A copy of a schema in which every object schema rejects properties it does not list
 * (`unevaluatedProperties: false`), except `open` ones and the members of an `allOf`.
 */
function closeObjects(node: unknown, open = false): unknown {
  if (Array.isArray(node)) return node.map((item) => closeObjects(item));
  if (!node || typeof node !== "object") return node;
  const record = node as Record<string, unknown>;
  const copy = Object.fromEntries(
    Object.entries(record).map(([key, value]) => [
      key,
      key === "allOf" ? (value as unknown[]).map((member) => closeObjects(member, true)) : closeObjects(value),
    ]),
  );
  const isObject = record.properties !== undefined || record.allOf !== undefined;
  return isObject && !open && record.additionalProperties === undefined
    ? { ...copy, unevaluatedProperties: false }
    : copy;
}

function validate(schema: Schema, value: unknown, doc: Document): string[] {
  let validator = validators.get(schema);
  if (!validator) {
    const closed = closeObjects(schema) as Schema;
    validator = new Validator({ ...closed, $defs: doc.components.schemas }, "2020-12", false);
    validators.set(schema, validator);
  }
  const result = validator.validate(value);
  return result.valid ? [] : result.errors.map((error) => `${error.instanceLocation}: ${error.error}`);
}

/** The documented path template for a canonical path (the contract's aliases mapped as the Worker maps them). */
function findTemplate(path: string, templates: { path: string; pattern: RegExp }[]) {
  return templates.find((template) => template.pattern.test(path))?.path;
}

function parseEvents(text: string): unknown[] {
  return text
    .split("\n\n")
    .map((block) => {
      const fields: Record<string, string> = {};
      for (const line of block.split("\n")) {
        const at = line.indexOf(": ");
        if (at > 0 && !line.startsWith(":")) fields[line.slice(0, at)] = line.slice(at + 2);
      }
      return fields;
    })
    .filter((fields) => fields.event)
    .map((fields) => ({ id: fields.id, event: fields.event, data: JSON.parse(fields.data ?? "null") }));
}

/** Throws, naming every mismatch, when an answer is not what the document says this request can get. */
export async function expectDocumented(method: string, url: string, response: Checked) {
  if (method === "OPTIONS") return; // CORS preflights, answered before routing.
  const { doc, templates } = await load();
  const requested = new URL(url, "http://localhost");
  // Routed as the Worker routes it: the paths without /api and with a trailing slash are the same operations.
  const pathname = canonicalPath(new Request(requested));
  const label = `${method} ${requested.pathname} → ${response.status}`;
  const mediaType = (response.headers.get("Content-Type") ?? "").split(";")[0]?.trim() ?? "";
  const errorEnvelope = { $ref: "#/$defs/Error" } as Schema;
  const fail = (problems: string[]) => {
    if (problems.length)
      throw new Error(`Undocumented answer to ${label}:\n  ${problems.join("\n  ")}\n${response.text}`);
  };
  const expectError = (status: number) => {
    const problems = response.status === status ? [] : [`expected ${status}`];
    if (mediaType !== "application/json") problems.push(`content type ${mediaType || "none"} is not JSON`);
    else problems.push(...validate(errorEnvelope, JSON.parse(response.text), doc));
    fail(problems);
  };

  if ((SELF_DESCRIPTION.has(pathname) || isPlayground(pathname)) && (method === "GET" || method === "HEAD")) return;
  const template = findTemplate(pathname, templates);
  if (!template) return SELF_DESCRIPTION.has(pathname) ? expectError(405) : expectError(404);
  const operation = doc.paths[template]?.[method === "HEAD" ? "get" : method.toLowerCase()];
  if (!operation) {
    expectError(405);
    return fail(response.headers.get("Allow") ? [] : ["a 405 without an Allow header"]);
  }
  const documented = operation.responses[String(response.status)] ?? operation.responses.default;
  if (!documented) return fail([`status ${response.status} is not documented for ${method} ${template}`]);
  if (response.text === "") {
    return fail(method === "HEAD" || !documented.content ? [] : ["no body, where the document describes one"]);
  }
  const schema = documented.content?.[mediaType]?.schema;
  if (!schema) return fail([`${mediaType || "no content type"} is not documented for this status`]);
  if (mediaType === "text/event-stream") {
    return fail(parseEvents(response.text).flatMap((event) => validate(schema, event, doc)));
  }
  fail(validate(schema, JSON.parse(response.text), doc));
}

/** One live event, as the live tests read it from a stream, against the document's LiveEvent schema. */
export async function expectDocumentedEvent(event: unknown) {
  const { doc } = await load();
  const problems = validate({ $ref: "#/$defs/LiveEvent" } as Schema, event, doc);
  if (problems.length)
    throw new Error(`Undocumented live event:\n  ${problems.join("\n  ")}\n${JSON.stringify(event)}`);
}

/** What the document finds wrong with a JSON body for one of an operation's responses (empty when it fits). */
export async function documentedResponseProblems(method: string, template: string, status: string, body: unknown) {
  const { doc } = await load();
  const schema = doc.paths[template]?.[method.toLowerCase()]?.responses[status]?.content?.["application/json"]?.schema;
  if (!schema) throw new Error(`${method} ${template} documents no JSON body for ${status}`);
  return validate(schema, body, doc);
}

/** What the document finds wrong with a JSON request body for an operation (empty when it accepts it). */
export async function documentedRequestProblems(method: string, template: string, body: unknown) {
  const { doc, openSchemas } = await load();
  const operation = doc.paths[template]?.[method.toLowerCase()] as
    | (Operation & { requestBody?: { content: Record<string, { schema: Schema }> } })
    | undefined;
  const schema = operation?.requestBody?.content["application/json"]?.schema;
  if (!schema) throw new Error(`${method} ${template} documents no JSON body`);
  // Request schemas stay open: a client may send fields the server ignores.
  const validator = new Validator({ ...schema, $defs: openSchemas }, "2020-12", false);
  const result = validator.validate(body);
  return result.valid ? [] : result.errors.map((error) => `${error.instanceLocation}: ${error.error}`);
}
