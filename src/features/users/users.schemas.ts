import { built, docsOnly, successSchema } from "../../lib/openapi";
import { UserSchema } from "../auth/auth.schemas";
import { TierSchema, UsageSchema } from "../prompts/prompts.schemas";

export const MeSchema = docsOnly(() =>
  built(UserSchema)
    .extend({ tier: built(TierSchema), usage: built(UsageSchema) })
    .openapi("Me"),
);

export const MeResponseSchema = docsOnly(() => successSchema({ user: built(MeSchema) }));
