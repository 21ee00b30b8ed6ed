import { counter } from "../../../../shared/metrics";

/** Patients generated, by output format (bounded label: bundle | ndjson | load). */
const generated = counter("synthetic_patients_generated_total", "Synthetic patients generated");

export function countGenerated(format: "bundle" | "ndjson" | "load", n = 1): void {
  generated.add(n, { format });
}

/** Patients written into phi, by outcome (created | existing | failed). */
export const loaded = counter("synthetic_patients_loaded_total", "Synthetic patients loaded into phi");
