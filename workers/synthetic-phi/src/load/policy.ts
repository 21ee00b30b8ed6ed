import type { EnvironmentName } from "../../../../shared/config";

export type LoadDecision = { ok: true } | { ok: false; reason: "production" | "disabled" };

/**
 * Whether this deployment may write synthetic patients into phi. Production is
 * refused whatever the configuration says (HIPAA 45 CFR 164.308(a)(1): test data
 * must not mix with real records); elsewhere it is opt-in by ALLOW_LOAD.
 */
export function loadPolicy(cfg: { environment: EnvironmentName; allowLoad: boolean }): LoadDecision {
  if (cfg.environment === "production") return { ok: false, reason: "production" };
  if (!cfg.allowLoad) return { ok: false, reason: "disabled" };
  return { ok: true };
}
