import { z } from "@hono/zod-openapi";

export const TierSchema = z.enum(["basic", "pro"]).openapi("Tier");

export const UsageSchema = z
  .object({
    used: z.number().int().openapi({ description: "Prompts counted today (UTC)" }),
    limit: z.number().int().nullable().openapi({ description: "Daily prompt limit; null for Pro (unlimited)" }),
    remaining: z.number().int().nullable().openapi({ description: "null for Pro (unlimited)" }),
    resetsAt: z.string().openapi({ description: "Next 00:00 UTC, when the count starts again" }),
  })
  .openapi("Usage");
