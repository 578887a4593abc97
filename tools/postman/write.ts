// npm run postman: regenerates postman/gemini-backend.postman_collection.json from the OpenAPI document.
import { writeFileSync } from "node:fs";
import { createApp, openApiConfig } from "../../src/app";
import { generateCollection, type OpenApiDocument } from "./generate";

export const COLLECTION_PATH = "postman/gemini-backend.postman_collection.json";

const doc = createApp().getOpenAPI31Document(openApiConfig as never) as unknown as OpenApiDocument;
writeFileSync(COLLECTION_PATH, `${JSON.stringify(generateCollection(doc), null, 2)}\n`);
console.log(`Wrote ${COLLECTION_PATH}`);
