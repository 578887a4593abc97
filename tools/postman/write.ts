// npm run postman: regenerates postman/gemini-backend.postman_collection.json from the OpenAPI document.
import { writeFileSync } from "node:fs";
import { createApp, loadRouters, openApiDocumentOf } from "../../src/app";
import { generateCollection, type OpenApiDocument } from "./generate";

export const COLLECTION_PATH = "postman/gemini-backend.postman_collection.json";

const doc = openApiDocumentOf(createApp(await loadRouters("everything"))) as unknown as OpenApiDocument;
writeFileSync(COLLECTION_PATH, `${JSON.stringify(generateCollection(doc), null, 2)}\n`);
console.log(`Wrote ${COLLECTION_PATH}`);
