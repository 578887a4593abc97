import { successSchema } from "../../lib/openapi";
import { UserSchema } from "../auth/auth.schemas";
import { TierSchema, UsageSchema } from "../prompts/prompts.schemas";

export const MeSchema = UserSchema.extend({ tier: TierSchema, usage: UsageSchema }).openapi("Me");

export const MeResponseSchema = successSchema({ user: MeSchema });
