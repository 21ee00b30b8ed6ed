import type { Bundle } from "../fhir/bundle";
import type { Provenance } from "../fhir/provenance";
import { GENERATOR, GENERATOR_VERSION, SYSTEMS } from "../generator/constants";
import { toEpochDay, dateTimeAt } from "../generator/dates";
import { generatePatient, resourceMeta, resourcesOf, type GenerationParams } from "../generator/patient";
import { hash128, uuidFromWords } from "../generator/random";
import { countGenerated } from "./metrics";

export interface Slice extends GenerationParams {
  offset: number;
  count: number;
}

/** The reference date as an instant: what `recorded`/`timestamp` carry instead of the clock. */
const referenceInstant = (s: Slice) => dateTimeAt(toEpochDay(s.referenceDate), 0);

const sliceId = (s: Slice, kind: string) =>
  uuidFromWords(hash128(`${kind}\u001f${s.seed}\u001f${s.offset}\u001f${s.count}\u001f${s.referenceDate}\u001f${s.observations}`));

/**
 * Provenance of a generated set (FHIR R4 Provenance): generator version, seed,
 * reference date and slice, targeting each Patient (their Observations and
 * Conditions hang from them). `recorded` is the reference date, not the clock,
 * so the output stays byte-identical across runs.
 */
export function provenance(s: Slice, patientIds: string[]): Provenance {
  const at = referenceInstant(s);
  return {
    resourceType: "Provenance",
    id: sliceId(s, "provenance"),
    meta: resourceMeta(s.seed),
    target: patientIds.map((id) => ({ reference: `Patient/${id}` })),
    occurredDateTime: at,
    recorded: at,
    policy: [SYSTEMS.policy],
    activity: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v3-DataOperation", code: "CREATE", display: "create" }] },
    agent: [
      {
        type: {
          coding: [{ system: "http://terminology.hl7.org/CodeSystem/provenance-participant-type", code: "assembler", display: "Assembler" }],
        },
        who: { identifier: { system: SYSTEMS.generator, value: GENERATOR }, display: `synthetic-phi generator ${GENERATOR_VERSION}` },
      },
    ],
    entity: [
      {
        role: "source",
        what: {
          identifier: { system: SYSTEMS.seed, value: s.seed },
          display: `seed ${s.seed}, offset ${s.offset}, count ${s.count}, reference date ${s.referenceDate}`,
        },
      },
    ],
  };
}

/** A `collection` Bundle of patients offset..offset+count-1 and their Provenance. Bounded by the route's limit. */
export function buildBundle(s: Slice): Bundle {
  const entry: Bundle["entry"] = [];
  const patientIds: string[] = [];
  for (let i = 0; i < s.count; i++) {
    const record = generatePatient(s, s.offset + i);
    patientIds.push(record.patient.id);
    for (const resource of resourcesOf(record)) entry.push({ fullUrl: `urn:uuid:${resource.id}`, resource });
  }
  countGenerated("bundle", s.count);
  const prov = provenance(s, patientIds);
  entry.push({ fullUrl: `urn:uuid:${prov.id}`, resource: prov });
  return {
    resourceType: "Bundle",
    id: sliceId(s, "bundle"),
    meta: resourceMeta(s.seed),
    type: "collection",
    timestamp: referenceInstant(s),
    entry,
  };
}
