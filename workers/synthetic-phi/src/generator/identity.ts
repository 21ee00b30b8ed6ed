import { base, en, en_US, Faker } from "@faker-js/faker";
import type { Patient } from "../fhir/patient";
import { SYSTEMS } from "./constants";
import { Rng, type Words } from "./random";

/**
 * Demographics that can never be a real person's (issue 5, "safe by construction"):
 * - SSN area 900-999: never issued by the SSA (SSA POMS RM 10201.070);
 * - phone 555-0100..555-0199: reserved for fictional use (NANPA);
 * - e-mail on example.com/.org/.net: reserved (RFC 2606 section 3);
 * - ZIP 00010..00099: no USPS ZIP code starts with 000 (the lowest is 00501), so no
 *   generated address is a deliverable one;
 * - identifier systems under our own URN namespace.
 * One locale only (en_US with its fallbacks) keeps the bundle small (STACK.md, "Bundles").
 */
const rng = new Rng();
// Faker calls the randomizer's methods unbound: hand it closures over our Rng.
const faker = new Faker({ locale: [en_US, en, base], randomizer: { next: () => rng.next(), seed: (s) => rng.seed(s) } });

export const EMAIL_DOMAINS = ["example.com", "example.org", "example.net"] as const;

const V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203";
const MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus";
const MARITAL_CODES = [
  { code: "S", display: "Never Married" },
  { code: "M", display: "Married" },
  { code: "D", display: "Divorced" },
  { code: "W", display: "Widowed" },
] as const;

export type Sex = "male" | "female";

export interface Identity {
  name: Patient["name"];
  telecom: Patient["telecom"];
  address: Patient["address"];
  ssn: string;
  mrn: string;
  maritalStatus?: Patient["maritalStatus"];
}

const pad = (n: number, width: number) => String(n).padStart(width, "0");

/** Lower-case ASCII letters and digits only, so the local part is always valid (RFC 5322 dot-atom). */
const emailPart = (s: string) => s.normalize("NFKD").toLowerCase().replace(/[^a-z0-9]/g, "") || "x";

export function ssn(r: Rng): string {
  return `${r.int(900, 999)}-${pad(r.int(1, 99), 2)}-${pad(r.int(1, 9999), 4)}`;
}

export function phone(r: Rng): string {
  // Any NANP area code: 2-9 then two digits, skipping N11 service codes.
  let area = r.int(200, 999);
  if (area % 100 === 11) area -= 1;
  return `+1-${area}-555-01${pad(r.int(0, 99), 2)}`;
}

export function identity(words: Words, sex: Sex, age: number): Identity {
  rng.reseed(words);
  const given = faker.person.firstName(sex);
  const middle = faker.person.firstName(sex);
  const family = faker.person.lastName();
  const telecom: Patient["telecom"] = [{ system: "phone", value: phone(rng), use: rng.chance(0.7) ? "mobile" : "home" }];
  if (age >= 13) {
    const local = `${emailPart(given)}.${emailPart(family)}${rng.int(1, 999)}`;
    telecom.push({ system: "email", value: `${local}@${rng.pick(EMAIL_DOMAINS)}`, use: "home" });
  }
  const address: Patient["address"] = [
    {
      use: "home",
      type: "physical",
      line: [faker.location.streetAddress()],
      city: faker.location.city(),
      state: faker.location.state({ abbreviated: true }),
      postalCode: `000${pad(rng.int(10, 99), 2)}`,
      country: "US",
    },
  ];
  const id: Identity = {
    name: [{ use: "official", family, given: [given, middle] }],
    telecom,
    address,
    ssn: ssn(rng),
    mrn: `SYN${pad(rng.int(0, 99_999_999), 8)}`,
  };
  if (age >= 18) {
    const m = age < 25 ? MARITAL_CODES[0] : rng.pick(age >= 70 ? MARITAL_CODES : MARITAL_CODES.slice(0, 3));
    id.maritalStatus = { coding: [{ system: MARITAL, code: m.code, display: m.display }], text: m.display };
  }
  return id;
}

/** The identifiers of a patient: the synthetic key (idempotent loading), an MRN and an SSN. */
export function identifiers(seed: string, index: number, who: Identity): Patient["identifier"] {
  return [
    { use: "usual", system: SYSTEMS.patient, value: syntheticKey(seed, index) },
    {
      use: "usual",
      type: { coding: [{ system: V2_0203, code: "MR", display: "Medical record number" }], text: "Medical Record Number" },
      system: SYSTEMS.mrn,
      value: who.mrn,
    },
    {
      use: "official",
      type: { coding: [{ system: V2_0203, code: "SS", display: "Social Security number" }], text: "Social Security Number" },
      system: SYSTEMS.ssn,
      value: who.ssn,
    },
  ];
}

/** `<seed>:<index>`: seeds cannot contain `:`, so the key is unique per (seed, index). */
export function syntheticKey(seed: string, index: number): string {
  return `${seed}:${index}`;
}
