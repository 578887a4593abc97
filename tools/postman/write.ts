// npm run postman: regenerates postman/gemini-backend.postman_collection.json from the OpenAPI document.
import { writeFileSync } from "node:fs";
import { createApp, openApiDocumentOf } from "../../src/app";
import { generateCollection, type OpenApiDocument } from "./generate";

export const COLLECTION_PATH = "postman/gemini-backend.postman_collection.json";

const doc = openApiDocumentOf(createApp()) as unknown as OpenApiDocument;
writeFileSync(COLLECTION_PATH, `${JSON.stringify(generateCollection(doc), null, 2)}\n`);
console.log(`Wrote ${COLLECTION_PATH}`);
