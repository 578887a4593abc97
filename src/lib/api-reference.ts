import { type OpenApiDocument, type OpenApiOperation, type OpenApiSchema, resolveSchema } from "./openapi-document";

/**
 * Renders the OpenAPI document as a self-contained HTML reference: no scripts, fonts or styles from
 * a CDN, so /docs works offline and on locked-down networks.
 */
type Schema = OpenApiSchema;
type Operation = OpenApiOperation;
type Document = OpenApiDocument;

const escapeHtml = (value: unknown) => String(value).replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
const anchor = (method: string, path: string) => escapeHtml(`${method}-${path}`);

function describeType(schema: Schema, doc: Document): string {
  const s = resolveSchema(schema, doc);
  const name = schema.$ref?.split("/").pop();
  if (name && (s.properties || s.allOf)) return name;
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((value) => JSON.stringify(value)).join(" | ");
  const variants = s.anyOf ?? s.oneOf;
  if (variants) return variants.map((variant) => describeType(variant, doc)).join(" | ");
  if (s.type === "array" && s.items) return `${describeType(s.items, doc)}[]`;
  const type = Array.isArray(s.type) ? s.type.join(" | ") : (s.type ?? "any");
  return s.format ? `${type} (${s.format})` : type;
}

function constraints(schema: Schema): string {
  const parts: string[] = [];
  if (schema.minLength !== undefined || schema.maxLength !== undefined) {
    parts.push(`length ${schema.minLength ?? 0}–${schema.maxLength ?? "∞"}`);
  }
  if (schema.minimum !== undefined || schema.maximum !== undefined) {
    parts.push(`range ${schema.minimum ?? "-∞"}–${schema.maximum ?? "∞"}`);
  }
  if (schema.pattern) parts.push(`pattern <code>${escapeHtml(schema.pattern)}</code>`);
  if (schema.default !== undefined) parts.push(`default <code>${escapeHtml(JSON.stringify(schema.default))}</code>`);
  // Objects and arrays are shown whole in the operation's example instead.
  if (schema.example !== undefined && (schema.example === null || typeof schema.example !== "object")) {
    parts.push(`e.g. <code>${escapeHtml(JSON.stringify(schema.example))}</code>`);
  }
  return parts.join(" · ");
}

/**
 * The object a schema describes, for listing its fields: an array's items, an `allOf` merged (how an
 * extended schema is written), the one object of a union with null. Anything else comes back as it is.
 */
function objectOf(schema: Schema, doc: Document): Schema {
  const s = resolveSchema(schema, doc);
  if (s.type === "array" && s.items) return objectOf(s.items, doc);
  if (s.allOf) {
    const members = s.allOf.map((member) => objectOf(member, doc));
    return {
      type: "object",
      properties: Object.assign({}, ...members.map((member) => member.properties)),
      required: members.flatMap((member) => member.required ?? []),
    };
  }
  const objects = (s.anyOf ?? s.oneOf ?? []).map((variant) => objectOf(variant, doc)).filter((v) => v.properties);
  return objects.length === 1 && objects[0] ? objects[0] : s;
}

function renderFields(schema: Schema, doc: Document, depth = 0): string {
  const object = objectOf(schema, doc);
  if (!object.properties || depth > 4) return "";
  const rows = Object.entries(object.properties).map(([name, child]) => {
    const resolved = resolveSchema(child, doc);
    const required = object.required?.includes(name) ? "" : ' <span class="opt">optional</span>';
    const note = [escapeHtml(resolved.description ?? ""), constraints(resolved)].filter(Boolean).join(" — ");
    return `<li><code>${escapeHtml(name)}</code> <span class="type">${escapeHtml(describeType(child, doc))}</span>${required}${
      note ? ` <span class="note">${note}</span>` : ""
    }${renderFields(child, doc, depth + 1)}</li>`;
  });
  return `<ul>${rows.join("")}</ul>`;
}

const EXAMPLE_TIME = "2026-08-15T09:30:00.000Z";

/**
 * One example value for a schema: its own `example` where it has one, else one built from its fields'
 * examples, constants, first enum values and types (a union: its first variant that is not null).
 * `fallbacks` fill top-level fields that have no example of their own.
 */
function exampleOf(schema: Schema, doc: Document, fallbacks: Record<string, unknown> = {}, depth = 0): unknown {
  const s = resolveSchema(schema, doc);
  if (s.example !== undefined) return s.example;
  if (s.const !== undefined) return s.const;
  if (s.enum) return s.enum[0];
  if (depth > 8) return null;
  if (s.allOf) {
    return Object.assign({}, ...s.allOf.map((member) => exampleOf(member, doc, fallbacks, depth + 1)));
  }
  const variants = s.anyOf ?? s.oneOf;
  if (variants) {
    const variant = variants.find((v) => resolveSchema(v, doc).type !== "null") ?? variants[0];
    return variant ? exampleOf(variant, doc, {}, depth + 1) : null;
  }
  const type = Array.isArray(s.type) ? (s.type.find((t) => t !== "null") ?? "null") : s.type;
  if (type === "array") return s.items ? [exampleOf(s.items, doc, {}, depth + 1)] : [];
  if (type === "object" || s.properties) {
    return Object.fromEntries(
      Object.entries(s.properties ?? {}).map(([name, child]) => [
        name,
        name in fallbacks && resolveSchema(child, doc).example === undefined
          ? fallbacks[name]
          : exampleOf(child, doc, {}, depth + 1),
      ]),
    );
  }
  if (type === "string") return s.format === "date-time" ? EXAMPLE_TIME : "string";
  if (type === "integer" || type === "number") return s.minimum ?? 0;
  if (type === "boolean") return false;
  return null;
}

const renderExample = (value: unknown) =>
  `<pre class="example"><code>${escapeHtml(JSON.stringify(value, null, 2))}</code></pre>`;

/** For a text/event-stream response: the event names it can carry, each with what it means. */
function renderEventStream(schema: OpenApiSchema | undefined, doc: Document): string {
  if (!schema) return "";
  const variants = resolveSchema(schema, doc).oneOf ?? resolveSchema(schema, doc).anyOf ?? [];
  const rows = variants.map((variant) => {
    const resolved = resolveSchema(variant, doc);
    const name = resolveSchema(resolved.properties?.event, doc);
    const event = String(name.const ?? name.enum?.[0] ?? "");
    return `<li><code>event: ${escapeHtml(event)}</code> ${escapeHtml(resolved.description ?? "")}${
      resolved.properties?.data ? renderFields(resolved.properties.data, doc) : ""
    }</li>`;
  });
  return ` <code>text/event-stream</code><ul>${rows.join("")}</ul>`;
}

function renderOperation(path: string, method: string, op: Operation, doc: Document): string {
  const body = op.requestBody?.content?.["application/json"]?.schema;
  const params = (op.parameters ?? []).map(
    (p) =>
      `<li><code>${escapeHtml(p.name)}</code> <span class="type">${escapeHtml(p.in)}${p.required ? "" : ", optional"}</span> ${escapeHtml(
        p.description ?? "",
      )} ${p.schema ? constraints(p.schema) : ""}</li>`,
  );
  const responses = Object.entries(op.responses ?? {}).map(([status, response]) => {
    const json = response.content?.["application/json"]?.schema;
    // Errors all have the one error envelope; successes show an example of their own body and its fields,
    // whose human-readable `message` is the response's description unless the schema gives one.
    const success =
      json && status.startsWith("2")
        ? `${renderExample(exampleOf(json, doc, { message: response.description }))}<details><summary>Fields</summary>${renderFields(json, doc)}</details>`
        : "";
    return `<li><b>${escapeHtml(status)}</b> ${escapeHtml(response.description ?? "")}${renderEventStream(
      response.content?.["text/event-stream"]?.schema,
      doc,
    )}${success}</li>`;
  });
  return `<section class="op" id="${anchor(method, path)}">
<h3><span class="method ${escapeHtml(method)}">${escapeHtml(method.toUpperCase())}</span> <code>${escapeHtml(path)}</code>${
    op.security?.length ? ' <span class="lock" title="Bearer token required">🔒 bearer</span>' : ""
  }</h3>
<p>${escapeHtml(op.summary ?? "")}</p>${op.description ? `<p class="desc">${escapeHtml(op.description)}</p>` : ""}
${params.length ? `<h4>Parameters</h4><ul>${params.join("")}</ul>` : ""}
${body ? `<h4>JSON body</h4>${renderFields(body, doc)}${renderExample(exampleOf(body, doc))}` : ""}
<h4>Responses</h4><ul>${responses.join("")}</ul>
</section>`;
}

/** Operations grouped under their first tag, in the order the document lists its tags. */
function groupByTag(doc: Document) {
  const groups = new Map<string, { path: string; method: string; op: Operation }[]>();
  for (const tag of doc.tags ?? []) groups.set(tag.name, []);
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const tag = op.tags?.[0] ?? "Other";
      groups.set(tag, [...(groups.get(tag) ?? []), { path, method, op }]);
    }
  }
  return [...groups].filter(([, operations]) => operations.length > 0);
}

export function renderApiReference(document: unknown): string {
  const doc = document as Document;
  const groups = groupByTag(doc);
  const toc = groups
    .map(
      ([tag, operations]) =>
        `<li class="tag">${escapeHtml(tag)}</li>${operations
          .map(
            ({ path, method }) =>
              `<li><a href="#${anchor(method, path)}"><span class="method ${escapeHtml(method)}">${escapeHtml(
                method.toUpperCase(),
              )}</span><span class="path">${escapeHtml(path)}</span></a></li>`,
          )
          .join("")}`,
    )
    .join("");
  const sections = groups
    .map(
      ([tag, operations]) =>
        `<h2>${escapeHtml(tag)}</h2>\n${operations.map(({ path, method, op }) => renderOperation(path, method, op, doc)).join("\n")}`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(doc.info.title)} — API reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;display:flex}
nav{width:340px;flex:none;height:100vh;overflow:auto;position:sticky;top:0;background:#f4f6fa;padding:16px;box-sizing:border-box}
nav ul{list-style:none;padding:0;margin:0}nav li.tag{margin:14px 0 4px;font-weight:600;font-size:12px;text-transform:uppercase;color:#667}
nav a{display:flex;gap:6px;align-items:baseline;text-decoration:none;color:inherit;font-size:13px;padding:2px 0}nav .path{word-break:break-all}nav .links a{display:inline}
main{flex:1;min-width:0;padding:24px 40px;max-width:960px}h2{margin-top:40px;border-bottom:2px solid #1d2330}
code{font:13px ui-monospace,monospace;background:#eef1f6;padding:1px 4px;border-radius:3px}
.op{border-top:1px solid #dde2ea;padding:12px 0}.method{display:inline-block;flex:none;min-width:54px;font:bold 12px ui-monospace,monospace;color:#fff;border-radius:3px;padding:2px 6px;text-align:center}
.get{background:#2f7d32}.post{background:#1f5fbf}.patch{background:#b26a00}.delete{background:#b3261e}
pre.example{background:#f4f6fa;border:1px solid #dde2ea;border-radius:4px;padding:8px 12px;margin:6px 0 12px;white-space:pre-wrap;overflow-wrap:anywhere}
pre.example code{background:none;padding:0}details{margin:0 0 12px}summary{cursor:pointer;color:#555;font-size:13px}
.type{color:#6b4fbb;font-size:13px}.opt{color:#888;font-size:12px}.note{color:#555;font-size:13px}.lock{font-size:12px;color:#8a6d00}.desc{color:#444}
</style></head><body>
<nav><b>${escapeHtml(doc.info.title)}</b> <small>v${escapeHtml(doc.info.version)}</small>
<p class="links"><a href="/playground">Playground</a> · <a href="/openapi.json">openapi.json</a></p><ul>${toc}</ul></nav>
<main><h1>${escapeHtml(doc.info.title)}</h1><p>${escapeHtml(doc.info.description ?? "")}</p>
<p>Try it in the browser: the <a href="/playground">playground</a> signs up, chats with replies written live, and upgrades to Pro, with this API.</p>
${sections}
</main></body></html>`;
}
