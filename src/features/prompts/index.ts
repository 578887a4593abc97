// What other features may use of prompts; everything else here is prompts' own.
export { settleAbandonedPrompt, settleCancelled } from "./prompts.queue";
export { findOwnedPrompt, findPromptWithReply } from "./prompts.repo";
export {
  type PromptDto,
  PromptResponseSchema,
  toMessageResponse,
  toPromptResponse,
  type UsageDto,
} from "./prompts.schemas";
export { tierAndUsage, utcDay } from "./quota";
export { currentUsage } from "./usage";
