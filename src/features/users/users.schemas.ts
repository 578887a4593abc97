import { z } from "@hono/zod-openapi";
import { built, docsOnly, successSchema } from "../../lib/openapi";
import { UserSchema } from "../auth/auth.schemas";
import { TierSchema, UsageSchema } from "../prompts/prompts.schemas";

export const MeSchema = docsOnly(() =>
  built(UserSchema)
    .extend({ tier: built(TierSchema), usage: built(UsageSchema) })
    .openapi("Me"),
);

export const MeResponseSchema = docsOnly(() => successSchema({ user: built(MeSchema) }));

const queryInteger = (name: string, min: number, max: number) =>
  z.preprocess(
    (value) => (typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : value),
    z
      .int({ error: `${name} must be a whole number from ${min} to ${max}` })
      .min(min)
      .max(max),
  );

export const UsageQuerySchema = z.object({
  days: queryInteger("days", 1, 90)
    .default(30)
    .openapi({ param: { name: "days", in: "query" }, description: "1–90 UTC days, today included" }),
});

const UsageDaySchema = docsOnly(() =>
  z
    .object({
      date: z.string().openapi({ description: "A UTC day", example: "2026-08-15" }),
      prompts: z.number().int().openapi({
        description:
          "Prompts sent that day: sends, edits, regenerations and retries (quota units given back are not counted)",
        example: 4,
      }),
      promptTokens: z
        .number()
        .int()
        .openapi({ description: "Input tokens of the replies written that day", example: 820 }),
      outputTokens: z
        .number()
        .int()
        .openapi({ description: "Output tokens of those replies, thinking tokens included", example: 1540 }),
    })
    .openapi("UsageDay"),
);

export const UsageResponseSchema = docsOnly(() =>
  successSchema({
    tier: built(TierSchema),
    today: built(UsageSchema),
    days: z.array(built(UsageDaySchema)).openapi({ description: "Newest first; days without prompts are zeros" }),
    totals: z
      .object({ prompts: z.number().int(), promptTokens: z.number().int(), outputTokens: z.number().int() })
      .openapi({ example: { prompts: 12, promptTokens: 2400, outputTokens: 4630 } }),
  }),
);
