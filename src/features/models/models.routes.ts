import { createRoute, z } from "@hono/zod-openapi";
import { built, docsOnly, jsonResponse, successSchema } from "../../lib/openapi";
import { createRouter } from "../../lib/validate";
import type { AppEnv } from "../../types";
import { modelsOf } from "./models";

const ModelSchema = docsOnly(() =>
  z
    .object({
      id: z.string().openapi({ description: "What a chatroom's `model` takes", example: "gemini-2.5-flash" }),
      label: z.string().openapi({ example: "Gemini 2.5 Flash" }),
      tiers: z
        .array(z.enum(["basic", "pro"]))
        .openapi({ description: 'Who may choose it: Pro-only models are ["pro"]', example: ["basic", "pro"] }),
      default: z.boolean().openapi({
        description:
          "The model of chatrooms that name none, and of a lapsed Pro user's prompts in a chatroom set to a Pro-only one",
        example: true,
      }),
    })
    .openapi("Model"),
);

const ModelsResponseSchema = docsOnly(() => successSchema({ models: z.array(built(ModelSchema)) }));

/** Mounted at /api/models (src/app.ts). */
export const modelRoutes = createRouter<AppEnv>();

modelRoutes.openapi(
  createRoute({
    method: "get",
    path: "/",
    operationId: "listModels",
    tags: ["Chatrooms"],
    summary: "The Gemini models a chatroom may use",
    description:
      "From the server's GEMINI_MODELS (the first open to every tier is the default) and GEMINI_PRO_MODELS. Needs no token; cacheable for 5 minutes.",
    security: [],
    responses: { 200: jsonResponse(ModelsResponseSchema, "The models, in GEMINI_MODELS order") },
  }),
  (c) => {
    c.header("Cache-Control", "public, max-age=300");
    return c.json({ success: true as const, message: "Models", models: modelsOf(c.env) }, 200);
  },
);
