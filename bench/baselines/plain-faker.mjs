// Baseline for synthetic generation: plain faker (en_US) in Node producing the same fields as the worker
// (identity, address, telecom, identifiers, and seven vitals), serialized as one JSON line per resource.
import { Faker, en_US, en, base } from "@faker-js/faker";

export function plainFakerPatientsPerSecond(count, withVitals) {
  const faker = new Faker({ locale: [en_US, en, base] });
  let bytes = 0;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    faker.seed(i);
    const sex = faker.person.sexType();
    const patient = {
      resourceType: "Patient",
      id: faker.string.uuid(),
      name: [{ family: faker.person.lastName(), given: [faker.person.firstName(sex), faker.person.middleName(sex)] }],
      gender: sex,
      birthDate: faker.date.birthdate().toISOString().slice(0, 10),
      telecom: [{ system: "phone", value: `555-01${faker.string.numeric(2)}` }, { system: "email", value: faker.internet.email({ provider: "example.com" }) }],
      address: [{ line: [faker.location.streetAddress()], city: faker.location.city(), state: faker.location.state({ abbreviated: true }), postalCode: `000${faker.string.numeric(2)}` }],
      identifier: [{ system: "urn:x:ssn", value: `9${faker.string.numeric(2)}-${faker.string.numeric(2)}-${faker.string.numeric(4)}` }],
    };
    bytes += JSON.stringify(patient).length + 1;
    if (withVitals) {
      for (const [code, unit, min, max] of [["8867-4", "/min", 50, 110], ["8310-5", "Cel", 36, 38], ["59408-5", "%", 92, 100], ["29463-7", "kg", 40, 120], ["8302-2", "cm", 150, 200], ["39156-5", "kg/m2", 18, 35], ["85354-9", "mm[Hg]", 90, 140]]) {
        const obs = { resourceType: "Observation", id: faker.string.uuid(), status: "final", code: { coding: [{ system: "http://loinc.org", code }] }, subject: { reference: `Patient/${patient.id}` }, valueQuantity: { value: faker.number.float({ min, max, fractionDigits: 1 }), unit, system: "http://unitsofmeasure.org", code: unit } };
        bytes += JSON.stringify(obs).length + 1;
      }
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  return { perSecond: count / seconds, bytes };
}
