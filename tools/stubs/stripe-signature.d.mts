export function signStripePayload(
  payload: string,
  secret: string,
  t?: number,
): Promise<{ header: string; t: number; v1: string }>;
