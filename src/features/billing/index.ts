// What other features may use of billing; everything else here is billing's own.
export { isPro, proCondition } from "./billing.repo";
export { cancelSubscriptionNow } from "./cancel";
