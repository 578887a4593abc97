// npm run lint:openapi: writes the OpenAPI document the Worker serves to dist/openapi.json for redocly to lint.
import { mkdirSync, writeFileSync } from "node:fs";
import { createApp, loadRouters, openApiDocumentOf } from "../../src/app";

export const DOCUMENT_PATH = "dist/openapi.json";

mkdirSync("dist", { recursive: true });
writeFileSync(
  DOCUMENT_PATH,
  `${JSON.stringify(openApiDocumentOf(createApp(await loadRouters("everything"))), null, 2)}\n`,
);
console.log(`Wrote ${DOCUMENT_PATH}`);
