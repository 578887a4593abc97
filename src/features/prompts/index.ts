// What other features may use of prompts; everything else here is prompts' own.
export { settleAbandonedPrompt } from "./prompts.queue";
export { TierSchema } from "./prompts.schemas";
export { tierAndUsage, utcDay } from "./quota";
export { currentUsage } from "./usage";
