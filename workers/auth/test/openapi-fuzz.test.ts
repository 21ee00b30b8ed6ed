import { env } from "cloudflare:test";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { PRINCIPAL_HEADER } from "../../../shared/principal";
import { fullPath, SERVICES } from "../src/gateway/route-table";
import {
  allDatabases,
  basic,
  claims,
  expectErrorBody,
  gw,
  gwDirect,
  randomIp,
  seedDevice,
  seedPatient,
  seedPayment,
  signWith,
  tableCounts,
  token,
} from "./helpers";

/**
 * Fuzzing of every operation of the gateway's merged OpenAPI document. Each case is
 * malformed by construction (a required field missing, a value of the wrong type or
 * out of its bounds, bad JSON, a wrong content type, a bad path parameter, a missing
 * or invalid required header, a bad or missing token...), so the only right answer is
 * a 4xx with a problem (or OperationOutcome) body. Requests carry a token with the
 * operation's scopes (from the document's security requirements) so they reach the
 * real validators behind the gateway. Afterwards every worker is ready and nothing
 * but refusal records was written.
 *
 * FUZZ_RUNS cases per operation: 100 by default (what `npm test` runs, so a developer's run stays
 * within minutes), 1,000 in `npm run test:fuzz` (what CI runs on top). The workers are fuzzed side by side, each
 * worker's operations one after the other (FUZZ_CONCURRENCY per worker, default 1). PHI and payments record
 * every refusal in their audit trails; those appends do not contend (shared/audit), so more is safe too.
 *
 * The cases call the gateway's fetch handler in this isolate (`gwDirect`: same env, real D1, real
 * service bindings to the four other workers, real Durable Objects), not `SELF.fetch`: the pool builds a
 * new entrypoint wrapper per `SELF` request and stacks a Proxy on its prototype each time, so tens of
 * thousands of them in one file slow down until "Maximum call stack size exceeded".
 */
const RUNS = Number(env.FUZZ_RUNS ?? "100") || 100;

/** Idempotency keys holding anything but a stored 4xx refusal (a success, or a claim left in flight). */
let idemAnswersBefore = 0;
async function storedAnswers(): Promise<number> {
  const row = await env.PAYMENTS_DB.prepare(
    "SELECT COUNT(*) AS n FROM idempotency_keys WHERE NOT (state = 'done' AND response_status BETWEEN 400 AND 499)",
  ).first<{ n: number }>();
  return row?.n ?? 0;
}
const CONCURRENCY = Number(env.FUZZ_CONCURRENCY ?? "1") || 1;
// A fixed seed by default so CI is reproducible; FUZZ_SEED=random explores new cases.
const SEED = env.FUZZ_SEED === "random" ? undefined : Number(env.FUZZ_SEED ?? "20261125");
/** FUZZ_ONLY: a regular expression on "METHOD /path" to fuzz some operations only (when hunting a failure). */
const ONLY = env.FUZZ_ONLY ? new RegExp(env.FUZZ_ONLY) : undefined;

// ---------------------------------------------------------------- the document

interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  enum?: unknown[];
  pattern?: string;
  format?: string;
  maxLength?: number;
  minLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  items?: Schema;
  $ref?: string;
}
interface Param {
  name: string;
  in: "path" | "query" | "header";
  required?: boolean;
  schema?: Schema;
}
interface Operation {
  method: string;
  /** OpenAPI template: /v1/phi/Patient/{id} */
  path: string;
  scopes: string[];
  secured: boolean;
  params: Param[];
  body?: { types: string[]; schema: Schema; required: boolean };
}
interface Doc {
  paths: Record<string, Record<string, { parameters?: Param[]; requestBody?: { required?: boolean; content: Record<string, { schema?: Schema }> }; security?: Record<string, string[]>[] }>>;
  components?: { schemas?: Record<string, Schema> };
}

function operations(doc: Doc): Operation[] {
  const resolve = (s: Schema | undefined): Schema => {
    let cur = s ?? {};
    for (let i = 0; i < 5 && cur.$ref; i++) cur = doc.components?.schemas?.[cur.$ref.split("/").pop() ?? ""] ?? {};
    return { ...cur, ...(cur.properties ? { properties: Object.fromEntries(Object.entries(cur.properties).map(([k, v]) => [k, v.$ref ? resolve(v) : v])) } : {}) };
  };
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      const security = op.security ?? [];
      const scopes = [...new Set(security.flatMap((s) => Object.values(s).flat()))];
      const content = op.requestBody?.content ?? {};
      const types = Object.keys(content);
      out.push({
        method: method.toUpperCase(),
        path,
        scopes,
        secured: security.length > 0,
        params: (op.parameters ?? []).map((p) => ({ ...p, schema: resolve(p.schema) })),
        ...(types.length > 0
          ? { body: { types, schema: resolve(content[types[0] ?? ""]?.schema), required: op.requestBody?.required === true } }
          : {}),
      });
    }
  }
  // FHIR `_search` takes its parameters as a form body (the document names no schema for it):
  // the GET search's parameters, unknown ones refused.
  for (const op of out) {
    if (op.method !== "POST" || !op.path.endsWith("/_search")) continue;
    const get = out.find((o) => o.method === "GET" && o.path === op.path.replace(/\/_search$/, ""));
    const properties = Object.fromEntries((get?.params ?? []).filter((p) => p.in === "query").map((p) => [p.name, p.schema ?? {}]));
    op.body = { types: ["application/x-www-form-urlencoded"], schema: { type: "object", properties, additionalProperties: false }, required: true };
  }
  return out;
}

// ---------------------------------------------------------------- cases

interface Case {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  /** Only cases that may be well formed may succeed (junk on routes that take no input). */
  mayPass: boolean;
}

/** What the harness knows that the document cannot say: seeded objects and tokens. */
interface World {
  patient: string;
  payment: string;
  paymentMethod: string;
  device: string;
  deviceToken: string;
  tokens: Map<string, string>;
  /** Valid tokens, each with one scope: the harness picks one that does not cover the operation. */
  wrongScope: { scope: string; token: string }[];
  expired: string;
  foreign: string;
}

const types = (s: Schema): string[] => (Array.isArray(s.type) ? s.type : s.type ? [s.type] : []);
const printable = (max: number, min = 0) => fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: min, maxLength: max });
const anyText = (max: number) => fc.oneof(fc.string({ maxLength: max }), fc.string({ unit: "grapheme", maxLength: max }), fc.string({ unit: "binary", maxLength: max }));
const huge = (min: number, max: number) => fc.tuple(fc.integer({ min, max }), fc.constantFrom("A", "9", "é", "\u{1F600}", "<", "%", "\\")).map(([n, ch]) => ch.repeat(n));

/** A JSON value of any type other than those `s` allows. */
function wrongType(s: Schema): fc.Arbitrary<unknown> | undefined {
  const t = types(s);
  if (t.length === 0) return undefined;
  const all: Record<string, fc.Arbitrary<unknown>> = {
    string: fc.oneof(anyText(30), fc.constant("")),
    number: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(1e308, -1e308, 0.5)),
    integer: fc.integer(),
    boolean: fc.boolean(),
    array: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }),
    object: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
    null: fc.constant(null),
  };
  const allowed = new Set(t.flatMap((x) => (x === "number" ? ["number", "integer"] : x === "integer" ? ["integer"] : [x])));
  const wrong = Object.entries(all)
    .filter(([k]) => !allowed.has(k))
    .map(([, a]) => a);
  // An integer field also refuses fractions and numbers beyond its bounds.
  if (t.includes("integer") && !t.includes("number")) wrong.push(fc.constantFrom(0.5, 1.5, -2.25, 1e300, -1e300));
  return wrong.length > 0 ? fc.oneof(...wrong) : undefined;
}

/** A value of the right JSON type that breaks one of the schema's bounds. */
function outOfBounds(s: Schema): fc.Arbitrary<unknown> | undefined {
  const out: fc.Arbitrary<unknown>[] = [];
  const t = types(s);
  if (t.includes("string")) {
    if (s.enum) out.push(anyText(20).filter((v) => !s.enum?.includes(v)));
    if (s.pattern) {
      const re = new RegExp(s.pattern, "u");
      out.push(fc.oneof(anyText(40), fc.constantFrom("../../etc/passwd", "a b", "\u202e", "\0", "' OR 1=1 --", "<script>")).filter((v) => !re.test(v)));
    }
    if (s.maxLength !== undefined) out.push(huge(s.maxLength + 1, Math.max(s.maxLength + 50, 20_000)));
    if ((s.minLength ?? 0) > 0) out.push(fc.constant(""));
    if (s.format === "date-time") out.push(fc.constantFrom("yesterday", "2024-13-45T99:99:99Z", "0000-00-00", "1e9", "2024-01-01T00:00:00+99:00"));
  }
  if (t.includes("integer") || t.includes("number")) {
    if (s.maximum !== undefined) out.push(fc.oneof(fc.constant(s.maximum + 1), fc.constant(1e300), fc.integer({ min: 1, max: 1e6 }).map((n) => (s.maximum ?? 0) + n)));
    if (s.minimum !== undefined) out.push(fc.oneof(fc.constant(s.minimum - 1), fc.constant(-1e300), fc.integer({ min: 1, max: 1e6 }).map((n) => (s.minimum ?? 0) - n)));
    if (s.exclusiveMinimum !== undefined) out.push(fc.constant(s.exclusiveMinimum));
  }
  return out.length > 0 ? fc.oneof(...out) : undefined;
}

const deep = fc.integer({ min: 50, max: 20_000 }).map((d) => JSON.parse("[".repeat(Math.min(d, 2000)) + "]".repeat(Math.min(d, 2000))) as unknown);
const deepText = fc.tuple(fc.integer({ min: 100, max: 50_000 }), fc.boolean()).map(([d, closed]) => (closed ? "[".repeat(d) + "]".repeat(d) : '{"a":'.repeat(d)));
const badJson = fc.oneof(
  fc.constantFrom("{", "}", '{"a":', "{'a':1}", '{"a":1,}', "[1,2", "NaN", "undefined", '{"a":NaN}', "\uFEFF{}x", '{"a":"\\x"}', '"unterminated', "{}{}", ""),
  anyText(200).filter((s) => {
    try {
      JSON.parse(s);
      return false;
    } catch {
      return true;
    }
  }),
);
const invalidUtf8 = fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => new Uint8Array([0x7b, 0xff, 0xfe, ...b, 0xc0, 0x7d]));

/** A JSON object body for `s` with exactly one kind of fault in it. */
function faultyObjects(s: Schema): { kind: string; arb: fc.Arbitrary<unknown> }[] {
  const props = Object.entries(s.properties ?? {});
  const filler = fc.dictionary(fc.constantFrom(...(props.length > 0 ? props.map(([k]) => k) : ["x"])), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });
  const out: { kind: string; arb: fc.Arbitrary<unknown> }[] = [];
  const required = s.required ?? [];
  if (required.length > 0) {
    out.push({
      kind: "missing-required",
      arb: fc.tuple(filler, fc.constantFrom(...required)).map(([o, drop]) => {
        const copy = { ...(o as Record<string, unknown>) };
        delete copy[drop];
        return copy;
      }),
    });
  }
  const typed = props.flatMap(([k, ps]) => {
    const w = wrongType(ps);
    return w ? [fc.tuple(fc.constant(k), w)] : [];
  });
  if (typed.length > 0) out.push({ kind: "wrong-type", arb: fc.tuple(filler, fc.oneof(...typed)).map(([o, [k, v]]) => ({ ...(o as object), [k]: v })) });
  const bounded = props.flatMap(([k, ps]) => {
    const b = outOfBounds(ps);
    return b ? [fc.tuple(fc.constant(k), b)] : [];
  });
  if (bounded.length > 0) out.push({ kind: "out-of-bounds", arb: fc.tuple(filler, fc.oneof(...bounded)).map(([o, [k, v]]) => ({ ...(o as object), [k]: v })) });
  if (s.additionalProperties === false) {
    out.push({
      kind: "extra-field",
      arb: fc
        .tuple(filler, fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !(s.properties && k in s.properties)), fc.jsonValue({ maxDepth: 2 }))
        .map(([o, k, v]) => ({ ...(o as object), [k]: v })),
    });
  }
  // Deep nesting in a field that takes no array (or a whole body that is not an object).
  const notArray = props.filter(([, ps]) => types(ps).length > 0 && !types(ps).includes("array")).map(([k]) => k);
  out.push({
    kind: "deep-nesting",
    arb: notArray.length > 0 ? fc.tuple(fc.constantFrom(...notArray), deep).map(([k, v]) => ({ [k]: v })) : deep,
  });
  return out;
}

function encodeForm(o: unknown): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o as Record<string, unknown>)) p.append(k, typeof v === "string" ? v : JSON.stringify(v));
  return p.toString();
}

/** Invalid values for one path parameter; `null` means "a well-formed id of nothing". */
function badPathValue(p: Param): fc.Arbitrary<string> {
  const s = p.schema ?? {};
  const bad: fc.Arbitrary<string>[] = [
    fc.constantFrom("%2e%2e%2f%2e%2e%2fadmin%2fkeys", "..%2f..%2f..%2fetc%2fpasswd", "%2e%2e", "%252e%252e%252f", "..%5c..%5cwindows", "%00", "%c0%ae%c0%ae%c0%af", "%ff%fe", "%e2%80%ae", "a%0d%0aSet-Cookie:x=1", "%20", "~", "*", "%27%20OR%201%3D1--"),
    anyText(40).filter((v) => v.length > 0).map((v) => encodeURIComponent(v)),
    huge(1_000, 8_000).map((v) => encodeURIComponent(v)),
    fc.constantFrom("\u{1F600}", "Ω≈ç√", "ｆｕｌｌｗｉｄｔｈ", "\u202etxt.exe").map((v) => encodeURIComponent(v)),
  ];
  if (types(s).includes("integer")) bad.push(fc.constantFrom("0", "-1", "1.5", "1e3", "99999999999999999999999", "0x10", "NaN", "Infinity"));
  if (s.pattern) {
    // A well-formed id that names nothing: the worker looks it up and answers 404.
    bad.push(fc.stringMatching(new RegExp(s.pattern)).filter((v) => v !== "." && v !== ".."));
  } else if (!types(s).includes("integer")) {
    bad.push(printable(40, 1).filter((v) => !/^\.{1,2}$/.test(v)).map((v) => encodeURIComponent(v)));
  } else {
    bad.push(fc.integer({ min: 100_000, max: 999_999_999 }).map(String));
  }
  return fc.oneof(...bad);
}

function build(op: Operation, world: World) {
  const pathParams = op.params.filter((p) => p.in === "path");
  const queryParams = op.params.filter((p) => p.in === "query");
  const headerParams = op.params.filter((p) => p.in === "header");
  const device = op.path.startsWith("/v1/devices/{id}");
  const scopesToken = op.scopes.includes("device:connect") ? world.deviceToken : world.tokens.get(op.scopes.join(" ")) ?? "";

  /** A real (seeded) or well-formed value for a path parameter: the fault is elsewhere. */
  const goodPath = (p: Param): fc.Arbitrary<string> => {
    const s = p.schema ?? {};
    const seeded = s.pattern?.includes("pi_")
      ? world.payment
      : s.pattern?.includes("pm_")
        ? world.paymentMethod
        : device
          ? world.device
          : op.path.startsWith("/v1/phi/Patient/{id}") && p.name === "id"
            ? world.patient
            : undefined;
    const wellFormed = s.pattern
      ? fc.stringMatching(new RegExp(s.pattern)).filter((v) => v !== "." && v !== "..").map((v) => encodeURIComponent(v))
      : types(s).includes("integer")
        ? fc.integer({ min: 100_000, max: 999_999_999 }).map(String)
        : printable(30, 1).filter((v) => !/^\.{1,2}$/.test(v)).map((v) => encodeURIComponent(v));
    return seeded ? fc.oneof(fc.constant(seeded), wellFormed) : wellFormed;
  };
  const fill = (values: Record<string, string>) => op.path.replace(/\{([^}]+)\}/g, (_, n: string) => values[n] ?? "x");
  const pathFrom = (gen: (p: Param) => fc.Arbitrary<string>) =>
    pathParams.length === 0 ? fc.constant(op.path) : fc.tuple(...pathParams.map((p) => gen(p).map((v) => [p.name, v] as const))).map((kv) => fill(Object.fromEntries(kv)));
  const goodPathArb = pathFrom(goodPath);

  /** Required headers with acceptable values (the idempotency key). */
  const goodHeaders = (): Record<string, string> => {
    const h: Record<string, string> = {};
    for (const p of headerParams) if (p.required) h[p.name] = `fuzz-${crypto.randomUUID()}`;
    return h;
  };
  const auth = (): Record<string, string> => (op.secured ? { authorization: `Bearer ${scopesToken}` } : {});
  const mk = (kind: string, path: string, headers: Record<string, string>, body?: string | Uint8Array, mayPass = false): Case => ({
    kind,
    method: op.method,
    path,
    headers: { ...auth(), ...goodHeaders(), ...headers },
    ...(body !== undefined ? { body } : {}),
    mayPass,
  });
  const kinds: { weight: number; arbitrary: fc.Arbitrary<Case> }[] = [];

  // Bodies: each fault kind in each content type the operation takes, wrong content types, bad JSON.
  if (op.body) {
    const { types: cts, schema } = op.body;
    const form = cts.includes("application/x-www-form-urlencoded");
    const jsonCt = cts.find((t) => t.includes("json"));
    for (const { kind, arb } of faultyObjects(schema)) {
      if (jsonCt) kinds.push({ weight: 3, arbitrary: fc.tuple(goodPathArb, arb).map(([p, o]) => mk(`body:${kind}`, p, { "content-type": jsonCt }, JSON.stringify(o))) });
      if (form && kind !== "deep-nesting" && kind !== "wrong-type") {
        kinds.push({ weight: 2, arbitrary: fc.tuple(goodPathArb, arb).map(([p, o]) => mk(`form:${kind}`, p, { "content-type": "application/x-www-form-urlencoded" }, encodeForm(o))) });
      }
    }
    if (jsonCt) {
      kinds.push({ weight: 2, arbitrary: fc.tuple(goodPathArb, fc.oneof(badJson, deepText)).map(([p, b]) => mk("body:bad-json", p, { "content-type": jsonCt }, b)) });
      kinds.push({ weight: 1, arbitrary: fc.tuple(goodPathArb, invalidUtf8).map(([p, b]) => mk("body:bad-utf8", p, { "content-type": jsonCt }, b)) });
      kinds.push({
        weight: 1,
        arbitrary: fc.tuple(goodPathArb, fc.oneof(fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }).map((a) => JSON.stringify(a)), fc.constantFrom("1", "null", "true", '"x"', "[]"))).map(([p, b]) => mk("body:not-object", p, { "content-type": jsonCt }, b)),
      });
      kinds.push({ weight: 1, arbitrary: fc.tuple(goodPathArb, fc.integer({ min: 1_050_000, max: 1_200_000 })).map(([p, n]) => mk("body:too-large", p, { "content-type": jsonCt }, `{"x":"${"a".repeat(n)}"}`)) });
    }
    const wrongCts = fc
      .oneof(fc.constantFrom("text/plain", "application/xml", "multipart/form-data; boundary=x", "application/json-patch+json", "application/fhir+xml", "image/png", "*/*", "application/x-www-form-urlencoded", "application/json", "application/fhir+json", "application/jsonx", "json"), printable(40))
      // A JSON route also takes any `+json` type (RFC 6839 structured syntax suffix), as zod-openapi's media type
      // check does: application/fhir+json on a capture is JSON, so it is not a wrong content type there.
      .filter((t) => {
        const essence = (t.split(";")[0] ?? "").trim().toLowerCase();
        return !cts.includes(essence) && !(jsonCt !== undefined && /^application\/([a-z.-]+\+)?json$/.test(essence));
      });
    // Also where the body is optional (void, capture, approve): a body of another media type, or one with
    // no content type, is refused with 415 rather than read as no body.
    if (op.body) kinds.push({
      weight: 2,
      arbitrary: fc
        .tuple(goodPathArb, fc.option(wrongCts, { nil: undefined }), fc.oneof(fc.constant("{}"), fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)), printable(100)))
        .map(([p, ct, b]) => mk("content-type", p, ct === undefined ? {} : { "content-type": ct }, b)),
    });
  }

  // Path parameters: traversal, unicode, huge, wrong type, or an id that names nothing.
  if (pathParams.length > 0) {
    const arb = fc.tuple(fc.nat({ max: pathParams.length - 1 }), fc.tuple(...pathParams.map((p) => badPathValue(p))), fc.tuple(...pathParams.map((p) => goodPath(p)))).map(([i, bad, good]) =>
      fill(Object.fromEntries(pathParams.map((p, j) => [p.name, j === i ? (bad[j] ?? "") : (good[j] ?? "")]))),
    );
    const body = op.body?.types[0]?.includes("json") ? fc.constant("{}") : fc.constant(undefined);
    kinds.push({
      weight: 4,
      arbitrary: fc.tuple(arb, body).map(([p, b]) => mk("path", p, b !== undefined ? { "content-type": op.body?.types[0] ?? "" } : {}, op.method === "GET" || op.method === "DELETE" ? undefined : b)),
    });
  }

  // Query: one parameter out of its schema, plus junk ones.
  const fhirSearch = op.method === "GET" && /^\/v1\/phi\/(Patient|Observation)$/.test(op.path);
  const queryFaults = queryParams.flatMap((p) => {
    const s = p.schema ?? {};
    const vals: fc.Arbitrary<string>[] = [];
    if (types(s).includes("integer")) {
      vals.push(fc.constantFrom("abc", "1.5", "-1.5", "NaN", "Infinity", "-Infinity", "99999999999999999999999", "1e400", "--1", "1_000"));
      if (s.maximum !== undefined) vals.push(fc.integer({ min: 1, max: 1e9 }).map((n) => String((s.maximum ?? 0) + n)));
      if (s.minimum !== undefined) vals.push(fc.integer({ min: 1, max: 1e9 }).map((n) => String((s.minimum ?? 0) - n)));
    } else {
      const b = outOfBounds(s);
      if (b) vals.push(b.filter((v): v is string => typeof v === "string" && v.length > 0));
    }
    return vals.length > 0 ? [fc.tuple(fc.constant(p.name), fc.oneof(...vals))] : [];
  });
  if (fhirSearch) queryFaults.push(fc.tuple(printable(20, 1).filter((n) => !queryParams.some((p) => p.name === n) && n !== "_format"), printable(20, 1)));
  if (queryFaults.length > 0) {
    const junk = fc.dictionary(fc.constantFrom("x", "__proto__", "constructor", "_format", "limit[]", "a.b"), printable(50), { maxKeys: 3 });
    kinds.push({
      weight: 4,
      arbitrary: fc.tuple(goodPathArb, fc.oneof(...queryFaults), fhirSearch ? fc.constant<Record<string, string>>({}) : junk, fc.boolean()).map(([p, [k, v], extra, first]) => {
        const q = new URLSearchParams();
        if (first) q.append(k, v);
        for (const [ek, ev] of Object.entries(extra)) if (ek !== k) q.append(ek, ev);
        if (!first) q.append(k, v);
        return mk(`query:${k}`, `${p}?${q.toString()}`, {}, op.body?.types[0]?.includes("json") ? "{}" : undefined);
      }),
    });
  }

  // Headers the operation declares: a required one missing, or one out of its schema.
  for (const h of headerParams) {
    const vals: fc.Arbitrary<string | undefined>[] = [];
    if (h.required) vals.push(fc.constant(undefined), fc.constantFrom("has space", "tab\there", "del\u007fchar", "%C3%A9-latin1"));
    if (h.schema?.maxLength !== undefined) vals.push(huge(h.schema.maxLength + 1, h.schema.maxLength + 5_000).map((v) => v.replace(/[^\x21-\x7e]/g, "A")));
    if (vals.length === 0) continue;
    kinds.push({
      weight: 2,
      arbitrary: fc.tuple(goodPathArb, fc.oneof(...vals)).map(([p, v]) => {
        const c = mk(`header:${h.name}`, p, { "content-type": op.body?.types[0] ?? "application/json" }, op.method === "GET" || op.method === "DELETE" ? undefined : "{}");
        if (v === undefined) delete c.headers[h.name];
        else c.headers[h.name] = v;
        return c;
      }),
    });
  }

  // PHI: every access names a purpose; a purpose that is not a code is refused (and audited). The public
  // CapabilityStatement is not an access to a record: it ignores the header.
  if (op.path.startsWith("/v1/phi/") && op.secured) {
    kinds.push({
      weight: 1,
      arbitrary: fc.tuple(goodPathArb, fc.oneof(fc.constantFrom("1TREAT", "TREAT;DROP", "treat now", "-", "_x"), printable(80).filter((v) => v.trim() !== "" && !/^[A-Za-z][A-Za-z0-9._-]{0,63}$/.test(v.trim())))).map(([p, v]) =>
        mk("header:x-purpose-of-use", p, { "x-purpose-of-use": v }),
      ),
    });
  }

  // Tokens: missing, garbage, oversized, expired, foreign, or without the route's scopes.
  if (op.secured) {
    const bad = fc.oneof(
      fc.constant(undefined),
      fc.constantFrom("Bearer", "Bearer ", "bearer x.y.z", "Basic dGVzdDp0ZXN0", "Token abc", "Bearer a b", `Bearer ${world.expired}`, `Bearer ${world.foreign}`),
      printable(200).map((s) => `Bearer ${s}`),
      huge(5_000, 20_000).map((s) => `Bearer ${s.replace(/[^\x21-\x7e]/g, "A")}`),
      fc.tuple(printable(40), printable(200), printable(80)).map(([a, b, c]) => `Bearer ${btoa(a)}.${btoa(b)}.${c.replace(/[^A-Za-z0-9_-]/g, "")}`),
      fc.constant(`Bearer ${scopesToken}x`),
      fc.constant(`Bearer ${world.wrongScope.find((w) => !op.scopes.includes(w.scope))?.token ?? ""}`),
    );
    kinds.push({
      weight: 3,
      arbitrary: fc.tuple(goodPathArb, bad).map(([p, a]) => {
        // GET /introspect answers any bad token with 200 {active:false} (RFC 7662 style), by design.
        const c = mk("auth", p, op.body ? { "content-type": op.body.types[0] ?? "" } : {}, op.body ? "{}" : undefined, op.path === "/introspect");
        if (a === undefined) delete c.headers.authorization;
        else c.headers.authorization = a;
        return c;
      }),
    });
  }

  // Client authentication on the OAuth endpoints (never as the bootstrap client: its lockout would end the run).
  if (/^\/(oauth\/|token$)/.test(op.path)) {
    const bad = fc.oneof(
      fc.constant(undefined),
      fc.tuple(printable(30, 1).filter((v) => v !== env.BOOTSTRAP_CLIENT_ID), printable(60)).map(([i, s]) => basic(i, s)),
      printable(100).map((s) => `Basic ${s}`),
      fc.constantFrom("Basic", "Basic ====", "Basic Og==", `Bearer x`, "Digest username=x"),
    );
    kinds.push({
      weight: 3,
      arbitrary: fc.tuple(bad, fc.constantFrom("client_credentials", "password")).map(([a, g]) => {
        const c = mk("client-auth", op.path, { "content-type": "application/x-www-form-urlencoded" }, `grant_type=${g}&token=abc`);
        if (a === undefined) delete c.headers.authorization;
        else c.headers.authorization = a;
        return c;
      }),
    });
  }

  // A route that takes no input at all: junk query, headers and content types must do no harm.
  if (kinds.length === 0 || (op.secured && !op.body && queryParams.length === 0 && pathParams.length === 0 && !op.path.startsWith("/v1/phi/"))) {
    kinds.push({
      weight: 3,
      arbitrary: fc
        .tuple(fc.dictionary(printable(10, 1), printable(50), { maxKeys: 4 }), fc.option(printable(60), { nil: undefined }))
        .map(([q, ct]) => mk("junk", `${op.path}?${new URLSearchParams(q).toString()}`, ct ? { "content-type": ct } : {}, undefined, true)),
    });
  }
  const base = fc.oneof(...kinds);

  // Decorations on any case: oversized and odd headers, a spoofed principal.
  const decor = fc.record(
    {
      big: huge(1_000, 16_000).map((v) => v.replace(/[^\x20-\x7e]/g, "z")),
      accept: fc.constantFrom("*/*", "text/html", "application/xml", "application/fhir+json;q=0", ""),
      spoof: printable(200),
      traceparent: printable(60),
    },
    { requiredKeys: [] },
  );
  return fc.tuple(base, decor).map(([c, d]) => {
    const headers: Record<string, string> = { ...c.headers, "cf-connecting-ip": randomIp() };
    if (d.big !== undefined) headers["x-fuzz-padding"] = d.big;
    if (d.accept !== undefined) headers.accept = d.accept;
    if (d.spoof !== undefined) headers[PRINCIPAL_HEADER] = d.spoof;
    if (d.traceparent !== undefined) headers.traceparent = d.traceparent;
    return { ...c, headers };
  });
}

// ---------------------------------------------------------------- the run

let ops: Operation[] = [];
let all = 0;
let world: World;
let before: Record<string, Record<string, number>>;
const seqBefore: Record<string, number> = {};
const tally = new Map<string, Map<number, number>>();
const kindTime = new Map<string, { n: number; ms: number; max: number; maxSize: number }>();

async function maxSeq(db: D1Database, table: string): Promise<number> {
  return (await db.prepare(`SELECT COALESCE(MAX(seq), 0) AS n FROM ${table}`).first<{ n: number }>())?.n ?? 0;
}

async function snapshot(): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [name, db] of Object.entries(allDatabases())) out[name] = await tableCounts(db);
  return out;
}

async function fuzzOperation(op: Operation): Promise<void> {
  const label = `${op.method} ${op.path}`;
  const seen = new Map<number, number>();
  tally.set(label, seen);
  await fc.assert(
    fc.asyncProperty(build(op, world), async (c) => {
      let res: Response;
      const t0 = Date.now();
      try {
        res = await gwDirect(c.path, { method: c.method, headers: c.headers, ...(c.body !== undefined ? { body: c.body } : {}) });
      } catch (err) {
        throw new Error(`${c.kind}: the request could not be sent: ${String(err)}`, { cause: err });
      }
      seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
      const ms = Date.now() - t0;
      const size = c.path.length + (typeof c.body === "string" ? c.body.length : (c.body?.length ?? 0)) + Object.values(c.headers).join("").length;
      const k = kindTime.get(c.kind) ?? { n: 0, ms: 0, max: 0, maxSize: 0 };
      kindTime.set(c.kind, { n: k.n + 1, ms: k.ms + ms, max: Math.max(k.max, ms), maxSize: ms >= k.max ? size : k.maxSize });
      const where = `${label} [${c.kind}]`;
      if (res.status >= 200 && res.status < 300 && c.mayPass) {
        const text = await res.text();
        if (/\n\s+at |file:\/\/|node_modules/.test(text)) throw new Error(`${where}: leak in a 2xx`);
        return;
      }
      if (res.status < 400 || res.status >= 500) {
        throw new Error(`${where}: status ${res.status}: ${(await res.text()).slice(0, 300)}`);
      }
      const pathOnly = new URL(c.path, "https://x").pathname;
      await expectErrorBody(res, pathOnly).catch((e: unknown) => {
        throw new Error(`${where}: ${e instanceof Error ? e.message : String(e)}`);
      });
    }),
    { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}), endOnFailure: true },
  );
}

describe("fuzz: malformed requests on every operation of the OpenAPI document", () => {
  beforeAll(async () => {
    const res = await gw("/openapi.json");
    expect(res.status).toBe(200);
    ops = operations(await res.json<Doc>());
    all = ops.length;
    if (ONLY) ops = ops.filter((o) => ONLY.test(`${o.method} ${o.path}`));
    const patient = await seedPatient();
    const payment = await seedPayment();
    const dev = await seedDevice();
    const other = await seedDevice("other");
    const scopeSets = new Set(ops.filter((o) => o.secured).map((o) => o.scopes.join(" ")));
    const tokens = new Map<string, string>();
    for (const s of scopeSets) if (s) tokens.set(s, await token(s));
    world = {
      patient,
      payment: payment.id,
      paymentMethod: payment.payment_method,
      device: dev.id,
      deviceToken: dev.token,
      tokens,
      wrongScope: [
        { scope: "synthetic:generate", token: await token("synthetic:generate") },
        { scope: "device:read", token: await token("device:read") },
      ],
      expired: await signWith(env.CURRENT_KEY, claims({ exp: Math.floor(Date.now() / 1000) - 3600, iat: Math.floor(Date.now() / 1000) - 7200, nbf: Math.floor(Date.now() / 1000) - 7200 })),
      // Another device's own token: valid, but not for this device.
      foreign: other.token,
    };
    before = await snapshot();
    seqBefore.phi = await maxSeq(env.PHI_DB, "phi_audit");
    seqBefore.payments = await maxSeq(env.PAYMENTS_DB, "audit_events");
    seqBefore.devices = await maxSeq(env.DEVICES_DB, "device_audit");
    idemAnswersBefore = await storedAnswers();
  });

  it("the document lists every gateway route, each with the scopes it needs", () => {
    expect(all).toBeGreaterThanOrEqual(55);
    for (const op of ops.filter((o) => o.path.startsWith("/v1/") && o.secured)) expect(op.scopes.length, `${op.method} ${op.path}`).toBeGreaterThan(0);
    // The only /v1 operations without a token are the table's public entries (FHIR metadata).
    const open = ops.filter((o) => o.path.startsWith("/v1/") && !o.secured).map((o) => `${o.method} ${o.path}`);
    const publicRoutes = SERVICES.flatMap((svc) => svc.routes.filter((r) => r.public).map((r) => `${r.method} ${fullPath(svc.prefix, r.path)}`));
    expect(open.sort()).toEqual(publicRoutes.sort());
  });

  it(`every operation: ${RUNS} malformed requests each answer 4xx with a problem body, never 5xx or a stack trace`, async () => {
    const lanes = new Map<string, Operation[]>();
    for (const op of ops) {
      const worker = /^\/v1\/(\w+)/.exec(op.path)?.[1] ?? "auth";
      lanes.set(worker, [...(lanes.get(worker) ?? []), op]);
    }
    const failures: string[] = [];
    const times: string[] = [];
    await Promise.all(
      [...lanes.values()].flatMap((queue) => Array.from({ length: CONCURRENCY }, () => queue)).map(async (queue) => {
        for (let op = queue.shift(); op; op = queue.shift()) {
          const t0 = Date.now();
          try {
            await fuzzOperation(op);
          } catch (err) {
            failures.push(`${op.method} ${op.path}: ${err instanceof Error ? err.message.slice(0, 1500) : String(err)}`);
          }
          times.push(`${op.method} ${op.path}: ${Date.now() - t0} ms`);
        }
      }),
    );
    if (env.FUZZ_REPORT) console.error(["per-operation times:", ...times, "statuses:", ...[...tally].map(([k, v]) => `${k}: ${JSON.stringify(Object.fromEntries(v))}`), "kinds:", ...[...kindTime].map(([k, v]) => `${k}: n=${v.n} avg=${(v.ms / v.n).toFixed(1)}ms max=${v.max}ms (size ${v.maxSize})`)].join("\n"));
    expect(failures).toEqual([]);
    expect(tally.size).toBe(ops.length);
    for (const [label, seen] of tally) expect([...seen.values()].reduce((a, b) => a + b, 0), label).toBe(RUNS);
  }, 1_800_000);

  it("afterwards every worker is ready", async () => {
    const res = await gw("/readiness");
    expect(res.status).toBe(200);
    const body = await res.json<{ status: string; checks: Record<string, string> }>();
    expect(body.status).toBe("ready");
    for (const w of ["db", "phi", "payments", "synthetic", "devices"]) expect(body.checks[w], w).toBe("ok");
    expect((await gw("/health")).status).toBe(200);
  });

  it("afterwards no row was written, except refusal records", async () => {
    const after = await snapshot();
    // Refusals are recorded, as they must be: security events and failure counters at the gateway,
    // failed or denied accesses in the PHI audit trail, refused payment actions in the payments trail.
    // A payment request refused after its idempotency key was claimed stores that refusal under the key, as
    // Stripe does (workers/payments/src/executor.ts): only such 4xx answers may appear, never a success.
    // Each trail's checkpoints grow as its sealer links those records (on its own alarm, not for any request), and
    // phi's links by patient with them (a refusal naming a patient, e.g. a read of a server-shaped id).
    const mayGrow: Record<string, string[]> = {
      auth: ["security_events", "auth_failures"],
      phi: ["phi_audit", "phi_audit_checkpoints", "phi_audit_patients"],
      payments: ["audit_events", "audit_events_checkpoints", "idempotency_keys"],
      devices: ["device_audit_checkpoints"],
    };
    expect(await storedAnswers(), "idempotency keys other than stored 4xx refusals").toBe(idemAnswersBefore);
    for (const [db, counts] of Object.entries(after)) {
      for (const [table, n] of Object.entries(counts)) {
        if (mayGrow[db]?.includes(table)) expect(n, `${db}.${table}`).toBeGreaterThanOrEqual(before[db]?.[table] ?? 0);
        else expect(n, `${db}.${table}`).toBe(before[db]?.[table]);
      }
    }
    const phi = await env.PHI_DB.prepare("SELECT outcome, COUNT(*) AS n FROM phi_audit WHERE seq > ? GROUP BY outcome").bind(seqBefore.phi).all<{ outcome: string; n: number }>();
    for (const r of phi.results) expect(["denied", "failed"], `phi_audit outcome ${r.outcome} x${r.n}`).toContain(r.outcome);
    // Payments also records every read it served (a request with junk headers on a route that takes no input is a
    // valid read): "allowed" may appear only on read actions, never on a change.
    const READS = ["payment.read", "payment.list", "refund.read", "audit.read", "audit.verify", "ledger.balance", "ledger.daily", "payment_method.read"];
    const pay = await env.PAYMENTS_DB.prepare("SELECT outcome, action, COUNT(*) AS n FROM audit_events WHERE seq > ? GROUP BY outcome, action").bind(seqBefore.payments).all<{ outcome: string; action: string; n: number }>();
    for (const r of pay.results) {
      if (r.outcome === "allowed") expect(READS, `payments audit: ${r.action} allowed x${r.n}`).toContain(r.action);
      else expect(["refused", "denied"], `payments audit outcome ${r.outcome} x${r.n}`).toContain(r.outcome);
    }
    // Device readings live in the device's object, not in D1: the seeded device has none.
    const readings = await gw(`/v1/devices/${world.device}/readings`, { headers: { authorization: `Bearer ${await token("device:read")}` } });
    expect(readings.status).toBe(200);
    const page = await readings.json<{ data?: unknown[]; readings?: unknown[] }>();
    expect((page.data ?? page.readings ?? []).length).toBe(0);
    // The seeded payment is still only authorized, and the seeded patient still at version 1.
    const p = await gw(`/v1/payments/${world.payment}`, { headers: { authorization: `Bearer ${await token("payment:read")}` } });
    expect((await p.json<{ status: string }>()).status).toBe("requires_capture");
    const pt = await gw(`/v1/phi/Patient/${world.patient}`, { headers: { authorization: `Bearer ${await token("phi:read")}` } });
    expect((await pt.json<{ meta: { versionId: string } }>()).meta.versionId).toBe("1");
  });
});
