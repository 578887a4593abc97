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
  if (schema.example !== undefined) parts.push(`e.g. <code>${escapeHtml(JSON.stringify(schema.example))}</code>`);
  return parts.join(" · ");
}

function renderFields(schema: Schema, doc: Document, depth = 0): string {
  const s = resolveSchema(schema, doc);
  const object = s.type === "array" && s.items ? resolveSchema(s.items, doc) : s;
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
  const responses = Object.entries(op.responses ?? {}).map(
    ([status, response]) =>
      `<li><b>${escapeHtml(status)}</b> ${escapeHtml(response.description ?? "")}${renderEventStream(
        response.content?.["text/event-stream"]?.schema,
        doc,
      )}</li>`,
  );
  return `<section class="op" id="${anchor(method, path)}">
<h3><span class="method ${escapeHtml(method)}">${escapeHtml(method.toUpperCase())}</span> <code>${escapeHtml(path)}</code>${
    op.security?.length ? ' <span class="lock" title="Bearer token required">🔒 bearer</span>' : ""
  }</h3>
<p>${escapeHtml(op.summary ?? "")}</p>${op.description ? `<p class="desc">${escapeHtml(op.description)}</p>` : ""}
${params.length ? `<h4>Parameters</h4><ul>${params.join("")}</ul>` : ""}
${body ? `<h4>JSON body</h4>${renderFields(body, doc)}` : ""}
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
nav a{display:flex;gap:6px;align-items:baseline;text-decoration:none;color:inherit;font-size:13px;padding:2px 0}nav .path{word-break:break-all}
main{flex:1;padding:24px 40px;max-width:960px}h2{margin-top:40px;border-bottom:2px solid #1d2330}
code{font:13px ui-monospace,monospace;background:#eef1f6;padding:1px 4px;border-radius:3px}
.op{border-top:1px solid #dde2ea;padding:12px 0}.method{display:inline-block;flex:none;min-width:54px;font:bold 12px ui-monospace,monospace;color:#fff;border-radius:3px;padding:2px 6px;text-align:center}
.get{background:#2f7d32}.post{background:#1f5fbf}.patch{background:#b26a00}.delete{background:#b3261e}
.type{color:#6b4fbb;font-size:13px}.opt{color:#888;font-size:12px}.note{color:#555;font-size:13px}.lock{font-size:12px;color:#8a6d00}.desc{color:#444}
</style></head><body>
<nav><b>${escapeHtml(doc.info.title)}</b> <small>v${escapeHtml(doc.info.version)}</small>
<p><a href="/playground">Playground</a> · <a href="/openapi.json">openapi.json</a></p><ul>${toc}</ul></nav>
<main><h1>${escapeHtml(doc.info.title)}</h1><p>${escapeHtml(doc.info.description ?? "")}</p>
<p>Try it in the browser: the <a href="/playground">playground</a> signs up, chats with replies written live, and upgrades to Pro, with this API.</p>
${sections}
</main></body></html>`;
}
