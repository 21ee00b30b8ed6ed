import { GENERATOR, SYSTEMS } from "../generator/constants";
import { syntheticKey } from "../generator/identity";
import { generatePatient } from "../generator/patient";
import type { Slice } from "../output/bundle";
import { countGenerated, loaded } from "../output/metrics";
import type { LoadReport } from "../schemas/load";
import { createInPhi, type PhiCall } from "./phi-client";

/**
 * Writes patients offset..offset+count-1 into phi, `batchSize` at a time
 * (concurrently within a batch). After a batch with a failure it stops, and
 * the report says exactly what phi holds: created, already there, failed, not
 * tried. A rerun of the same seed finds the patients already there.
 * `call` is asked per batch, so the principal it carries stays fresh.
 */
export async function loadPatients(call: () => Promise<PhiCall>, s: Slice, batchSize: number): Promise<LoadReport> {
  const report: LoadReport = {
    seed: s.seed,
    offset: s.offset,
    count: s.count,
    reference_date: s.referenceDate,
    generator: GENERATOR,
    created: [],
    existing: [],
    failed: [],
    not_attempted: 0,
  };
  for (let start = 0; start < s.count; start += batchSize) {
    const c = await call();
    const indexes = Array.from({ length: Math.min(batchSize, s.count - start) }, (_, k) => s.offset + start + k);
    const outcomes = await Promise.all(
      indexes.map((index) => {
        const { patient } = generatePatient({ ...s, observations: false }, index);
        countGenerated("load");
        return createInPhi(c, patient, { system: SYSTEMS.patient, value: syntheticKey(s.seed, index) });
      }),
    );
    outcomes.forEach((o, k) => {
      const index = indexes[k] ?? -1;
      loaded.add(1, { outcome: o.outcome });
      if (o.outcome === "failed") report.failed.push({ index, status: o.status, code: o.code });
      else report[o.outcome].push({ index, id: o.id });
    });
    if (report.failed.length > 0) {
      report.not_attempted = s.count - start - indexes.length;
      break;
    }
  }
  return report;
}
