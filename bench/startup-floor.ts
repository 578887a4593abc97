// The startup floor: a Worker that loads the libraries ours evaluates at module load (zod with its
// OpenAPI extension, Hono, Drizzle, jose, the Gemini SDK) and builds nothing with them. Its global-scope
// CPU beside ours (`npm run bench`) tells the libraries' share of our startup from our own code's.
// Every import is used, so the bundler keeps each library's module code as ours does. Never deployed.
import { GoogleGenerativeAI } from "@google/generative-ai";
import { OpenAPIHono, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { sqliteTable } from "drizzle-orm/sqlite-core";
import { jwtVerify, SignJWT } from "jose";

const loaded = [GoogleGenerativeAI, OpenAPIHono, z, eq, drizzle, sqliteTable, jwtVerify, SignJWT];

export class ChatroomHub {
  fetch() {
    return new Response(null, { status: 204 });
  }
}

export default {
  fetch: () => new Response(String(loaded.length)),
} satisfies ExportedHandler;
