import { z } from "@hono/zod-openapi";
import { built, docsOnly, successSchema } from "../../lib/openapi";
import { queryInteger } from "../../lib/query";
import { UserSchema } from "../auth";
import { FeedbackSchema, UsageSchema, VersionSchema } from "../messages";
import { TierSchema } from "../prompts";

export const MeSchema = docsOnly(() =>
  built(UserSchema)
    .extend({ tier: built(TierSchema), usage: built(UsageSchema) })
    .openapi("Me"),
);

export const MeResponseSchema = docsOnly(() => successSchema({ user: built(MeSchema) }));

export const DeleteAccountBodySchema = z
  .object({
    password: z
      .string()
      .min(1)
      .max(1024)
      .openapi({ example: "s3cretPass", description: "The account's current password, asked for again" }),
  })
  .openapi("DeleteAccountRequest");

export const DeleteAccountResponseSchema = docsOnly(() => successSchema({ deleted: z.literal(true) }));

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

const exportExample = {
  exportedAt: "2026-08-16T10:00:00.000Z",
  user: {
    id: "0193a1b0-1111-7000-8000-000000000001",
    phoneNumber: "+919876543210",
    email: null,
    fullName: "Asha",
    verifiedAt: "2026-08-15T09:00:00.000Z",
    createdAt: "2026-08-15T08:59:00.000Z",
  },
  subscription: null,
  chatrooms: [
    {
      id: "0193a1c2-7d6e-7f00-8a1b-2c3d4e5f6a7b",
      name: "Trip planning",
      systemInstruction: null,
      model: null,
      activeLeafId: "0198a9e4-2a1d-7e44-8b55-6c7d8e9f0a1b",
      createdAt: "2026-08-15T09:20:00.000Z",
      updatedAt: "2026-08-15T09:30:06.000Z",
      messages: [
        {
          id: "0198a9e4-0b6f-7a10-9c21-3d4e5f6a7b8c",
          role: "user",
          content: "Plan 3 days in Lisbon",
          status: "completed",
          createdAt: "2026-08-15T09:30:00.000Z",
          parentId: null,
          version: { index: 1, count: 1, previousId: null, nextId: null },
        },
      ],
    },
  ],
  usage: [{ date: "2026-08-15", prompts: 1 }],
};

export const ExportSchema = docsOnly(() =>
  z
    .object({
      exportedAt: z.string(),
      user: z.object({
        id: z.string(),
        phoneNumber: z.string(),
        email: z.string().nullable(),
        fullName: z.string().nullable(),
        verifiedAt: z.string().nullable(),
        createdAt: z.string().nullable(),
      }),
      subscription: z
        .object({
          status: z.string().nullable(),
          currentPeriodEnd: z.string().nullable(),
          cancelAtPeriodEnd: z.boolean(),
        })
        .nullable(),
      chatrooms: z.array(
        z
          .object({
            id: z.string(),
            name: z.string().nullable(),
            systemInstruction: z.string().nullable(),
            model: z.string().nullable(),
            activeLeafId: z.string().nullable(),
            createdAt: z.string(),
            updatedAt: z.string(),
            messages: z
              .array(
                z.object({
                  id: z.string(),
                  role: z.enum(["user", "assistant"]),
                  content: z.string(),
                  status: z.string(),
                  createdAt: z.string(),
                  parentId: z.string().nullable(),
                  version: built(VersionSchema),
                  replyTo: z.string().optional().openapi({ description: "On replies: the prompt answered" }),
                  tokens: z
                    .object({
                      prompt: z.number().int().nullable(),
                      completion: z.number().int().nullable(),
                      thoughts: z.number().int().nullable(),
                    })
                    .optional()
                    .openapi({ description: "On replies" }),
                  model: z.string().optional().openapi({ description: "On replies written by Gemini" }),
                  feedback: z
                    .union([built(FeedbackSchema), z.null()])
                    .optional()
                    .openapi({ description: "On replies" }),
                }),
              )
              .openapi({ description: "Every message of every branch, oldest first" }),
          })
          .openapi({ description: "A chatroom with its settings" }),
      ),
      usage: z.array(z.object({ date: z.string(), prompts: z.number().int() })),
    })
    .openapi("AccountExport", { example: exportExample }),
);
