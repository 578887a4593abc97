import { AppError } from "../../lib/errors";

/** The Gemini model ids when GEMINI_MODELS is not set: the first is the default. */
const DEFAULT_MODELS = "gemini-2.5-flash,gemini-2.5-pro";
const DEFAULT_PRO_MODELS = "gemini-2.5-pro";

export type ModelInfo = { id: string; label: string; tiers: ("basic" | "pro")[]; default: boolean };

const idsOf = (list: string) => [
  ...new Set(
    list
      .split(",")
      .map((id) => id.trim())
      .filter(Boolean),
  ),
];

/** "gemini-2.5-flash" → "Gemini 2.5 Flash". */
const labelOf = (id: string) =>
  id
    .split("-")
    .map((word) => (/^\d/.test(word) ? word : word.charAt(0).toUpperCase() + word.slice(1)))
    .join(" ");

let cache: { key: string; models: ModelInfo[] } | undefined;

/**
 * The models chatrooms may choose, from GEMINI_MODELS (the first is the default; GEMINI_MODEL, the
 * single-model setting of earlier versions, is the default when GEMINI_MODELS is not set) and
 * GEMINI_PRO_MODELS (the ones only Pro users may choose). The default is never Pro-only: if the first
 * listed is, the first open to everyone is the default.
 */
export function modelsOf(env: Env): ModelInfo[] {
  const legacy = (env as { GEMINI_MODEL?: string }).GEMINI_MODEL;
  const list = env.GEMINI_MODELS || (legacy ? `${legacy},${DEFAULT_MODELS}` : DEFAULT_MODELS);
  const proList = env.GEMINI_PRO_MODELS ?? DEFAULT_PRO_MODELS;
  const key = `${list}\n${proList}`;
  if (cache?.key === key) return cache.models;
  const ids = idsOf(list);
  const proOnly = new Set(idsOf(proList));
  const defaultId = ids.find((id) => !proOnly.has(id)) ?? ids[0];
  const models = ids.map((id) => ({
    id,
    label: labelOf(id),
    tiers: proOnly.has(id) ? (["pro"] as ModelInfo["tiers"]) : (["basic", "pro"] as ModelInfo["tiers"]),
    default: id === defaultId,
  }));
  cache = { key, models };
  return models;
}

export const defaultModelOf = (env: Env) => modelsOf(env).find((model) => model.default)?.id ?? "gemini-2.5-flash";

/**
 * The model a prompt is answered with: the chatroom's, while it is still offered and the user may use
 * it (a lapsed Pro user's Pro-only model falls back), else the default.
 */
export function effectiveModel(env: Env, chosen: string | null, pro: boolean): string {
  const model = chosen ? modelsOf(env).find((candidate) => candidate.id === chosen) : undefined;
  if (!model || (!model.tiers.includes("basic") && !pro)) return defaultModelOf(env);
  return model.id;
}

/**
 * Checks a model a user names for a chatroom: 400 for one not offered, 403 PRO_REQUIRED for a Pro-only
 * one when `pro()` says the user is not Pro (asked only then: it costs a read).
 */
export async function checkModelChoice(env: Env, model: string, pro: () => Promise<boolean>) {
  const known = modelsOf(env).find((candidate) => candidate.id === model);
  if (!known) {
    throw new AppError(400, "VALIDATION_FAILED", "Request validation failed", [
      {
        path: "model",
        message: `model must be one of ${modelsOf(env)
          .map((candidate) => candidate.id)
          .join(", ")} (GET /api/models), or null for the default`,
      },
    ]);
  }
  if (!known.tiers.includes("basic") && !(await pro())) {
    throw new AppError(403, "PRO_REQUIRED", `${known.label} is for Pro users; upgrade to Pro to choose it`);
  }
}
