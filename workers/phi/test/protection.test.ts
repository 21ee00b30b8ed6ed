import { DEFAULT_TENANT_ID } from "../../../shared/tenants";
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { parseKeyring, sealedKid } from "../../../shared/crypto";
import { indexEntries, patientValues } from "../src/fhir/index-tokens";
import { PatientSchema } from "../src/fhir/patient";
import { writeVersionStatements } from "../src/store/resources";
import { seal } from "../src/store/seal";
import syntheaObservation from "./fixtures/synthea-observation-bp.json";
import synthea from "./fixtures/synthea-patient.json";
import { call, createPatient, form, json } from "./helpers";

/** Every value of every row of every table in the phi database, as one string. */
async function dumpDatabase(): Promise<{ tables: string[]; text: string }> {
  const { results: tables } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all<{ name: string }>();
  let out = "";
  const dumped: string[] = [];
  for (const { name } of tables) {
    // SQLite and D1 internals (the runtime refuses to read _cf_*); everything else is ours.
    if (name.startsWith("sqlite_") || name.startsWith("_cf_")) continue;
    const { results } = await env.DB.prepare(`SELECT * FROM "${name}"`).all();
    out += JSON.stringify(results);
    dumped.push(name);
  }
  return { tables: dumped, text: out };
}

describe("protection at rest", () => {
  it("round-trips a Synthea R4 Patient with extensions and several identifiers, and an Observation", async () => {
    const { id, res, resource } = await createPatient(synthea);
    expect(res.status).toBe(201);
    const { id: _ignored, meta: sentMeta, ...sent } = synthea;
    expect(resource).toMatchObject({ ...sent, id, meta: { ...sentMeta, versionId: "1" } });
    const read = await json(await call(`/Patient/${id}`));
    expect(read).toEqual(resource);
    const obs = await call("/Observation", { method: "POST", body: { ...syntheaObservation, subject: { reference: `Patient/${id}` } } });
    expect(obs.status).toBe(201);
    expect(await json(obs)).toMatchObject({ component: syntheaObservation.component, effectiveInstant: syntheaObservation.effectiveInstant });
    const found = await json<{ entry: unknown[] }>(await call("/Patient/_search", form({ identifier: "http://hl7.org/fhir/sid/us-ssn|999-34-2070" })));
    expect(found.entry).toHaveLength(1);
  });

  it("stores no plaintext identifier anywhere in the phi database", async () => {
    const { id } = await createPatient(synthea);
    await call(`/Patient/${id}`);
    await call("/Patient/_search", form({ family: "Gerlach374" }));
    const { tables, text: dump } = await dumpDatabase();
    expect(tables).toEqual(expect.arrayContaining(["resource_versions", "search_index", "phi_audit"]));
    expect(dump).toContain(id);
    for (const secret of [
      "Gerlach374",
      "Lindsay928",
      "Kittie678",
      "999-34-2070",
      "S99966502",
      "X89909962X",
      "555-450-5873",
      "690 Raynor Overpass",
      "Randolph",
      "Wayland",
      "1950-10-24",
      "42.1673",
    ]) {
      expect(dump.toLowerCase()).not.toContain(secret.toLowerCase());
    }
  });

  it("reads and searches records sealed under an older key after rotation; new versions use the tenant's data key", async () => {
    // The test keyring is "k2:...,k1:...": k2 is current. Write a record the way the
    // worker did before k2 was added, with a keyring that holds only k1.
    const k1Only = await parseKeyring(env.PHI_ENCRYPTION_KEYS.split(",").filter((e) => e.startsWith("k1:")).join(","));
    const id = crypto.randomUUID();
    const body = PatientSchema.parse({ resourceType: "Patient", name: [{ family: "Rotated", given: ["Old"] }], birthDate: "1961-07-01" });
    const lastUpdated = new Date().toISOString();
    const resource = { ...body, id, meta: { versionId: "1", lastUpdated } };
    const sealed = await seal(k1Only, "Patient", id, 1, resource);
    expect(sealedKid(sealed)).toBe("k1");
    const index = await indexEntries(env.PHI_INDEX_KEY, "Patient", patientValues(body, id));
    await env.DB.batch(
      writeVersionStatements(
        { db: env.DB, tenant: DEFAULT_TENANT_ID },
        { resource_type: "Patient", id, version_id: 1, last_updated: lastUpdated, deleted: 0, sealed, patient_id: id },
        index,
      ),
    );

    expect(await json(await call(`/Patient/${id}`))).toMatchObject({ name: [{ family: "Rotated" }] });
    const found = await json<{ entry: { resource: { id: string } }[] }>(await call("/Patient/_search", form({ family: "rotated", birthdate: "1961-07-01" })));
    expect(found.entry.map((e) => e.resource.id)).toEqual([id]);

    const upd = await call(`/Patient/${id}`, { method: "PUT", body: { ...body, id, gender: "female" }, headers: { "if-match": 'W/"1"' } });
    expect(upd.status).toBe(200);
    const { results } = await env.DB.prepare("SELECT version_id, sealed FROM resource_versions WHERE id = ? ORDER BY version_id")
      .bind(id)
      .all<{ version_id: number; sealed: string }>();
    // The new version is sealed under the tenant's data key (shared/keys/tenant-keys.ts), which k2 wraps.
    const [old, fresh] = results.map((r) => sealedKid(r.sealed));
    expect(old).toBe("k1");
    expect(fresh).toMatch(/^tk_/);
    expect(await json(await call(`/Patient/${id}/_history/1`))).toMatchObject({ meta: { versionId: "1" } });
  });

  it("a sealed body moved to another row does not decrypt (AAD binds it to its record)", async () => {
    const a = await createPatient({ resourceType: "Patient", name: [{ family: "Moved" }] });
    const b = await createPatient({ resourceType: "Patient", name: [{ family: "Target" }] });
    await env.DB.prepare(
      "UPDATE resource_versions SET sealed = (SELECT sealed FROM resource_versions WHERE id = ?) WHERE id = ?",
    )
      .bind(a.id, b.id)
      .run();
    const res = await call(`/Patient/${b.id}`);
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain("Moved");
  });
});
