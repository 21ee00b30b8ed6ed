import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE, bootstrapAuth, form, FORM, randomIp, token } from "./helpers";

/**
 * An abort storm: hundreds of requests cancelled by their client while in flight (the
 * runtime tears down their context mid-work: key imports, the revocation view and its
 * background refresh, forwarding over a service binding, D1, security events in
 * waitUntil), with live requests beside them. Every request sent afterwards must still
 * complete with its own correct status: no module state may hold work a cancelled
 * request owned. Nothing is timed; a hang fails on the test timeout.
 *
 * Audited routes of phi and payments are in the storm too: their audit records ride in
 * each request's own D1 batch (shared/audit). Under the chained design they replaced,
 * appends took turns on a promise chain, and this storm made every later phi request
 * hang (the runtime cancelled continuations resolved from a finished request's context).
 */
const WAVES = 3;
const PER_WAVE = 100;

const tokenForm = (scope: string): RequestInit => ({
  method: "POST",
  headers: { ...FORM, authorization: bootstrapAuth(), "cf-connecting-ip": randomIp() },
  body: form({ grant_type: "client_credentials", scope }),
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("abort storm", () => {
  it(`${WAVES * PER_WAVE} requests aborted in flight beside live ones; every later request completes correctly`, async () => {
    const tok = await token("synthetic:generate device:read admin phi:read phi:write payment:read payment:write");
    const bearer = { authorization: `Bearer ${tok}` };
    const fhir = { ...bearer, "content-type": "application/fhir+json" };
    const patient = { resourceType: "Patient", name: [{ family: "Stormy" }] };
    const created = await SELF.fetch(BASE + "/v1/phi/Patient", { method: "POST", headers: fhir, body: JSON.stringify(patient) });
    expect(created.status).toBe(201);
    const { id } = await created.json<{ id: string }>();
    const kinds: { path: string; init: () => RequestInit; status: number }[] = [
      { path: "/v1/synthetic/patients?count=3&seed=7", init: () => ({ headers: bearer }), status: 200 },
      { path: "/v1/devices", init: () => ({ headers: bearer }), status: 200 },
      { path: "/admin/clients?limit=5", init: () => ({ headers: bearer }), status: 200 },
      { path: "/oauth/token", init: () => tokenForm("synthetic:generate"), status: 200 },
      { path: "/oauth/introspect", init: () => ({ ...tokenForm("admin"), body: form({ token: tok }) }), status: 200 },
      { path: "/v1/devices", init: () => ({ headers: { authorization: "Bearer not-a-token" } }), status: 401 },
      { path: `/v1/phi/Patient/${id}`, init: () => ({ headers: bearer }), status: 200 },
      { path: "/v1/phi/Patient/no-such-patient", init: () => ({ headers: bearer }), status: 404 },
      { path: "/v1/phi/Patient", init: () => ({ method: "POST", headers: fhir, body: JSON.stringify(patient) }), status: 201 },
      { path: "/v1/phi/Patient?family=Stormy&_count=2", init: () => ({ headers: bearer }), status: 200 },
      { path: "/v1/payments?limit=2", init: () => ({ headers: bearer }), status: 200 },
      { path: "/v1/payments/ledger/balance", init: () => ({ headers: bearer }), status: 403 },
      { path: "/.well-known/jwks.json", init: () => ({}), status: 200 },
    ];
    const send = async (k: (typeof kinds)[number], signal?: AbortSignal): Promise<number> => {
      const res = await SELF.fetch(BASE + k.path, { ...k.init(), signal });
      await res.arrayBuffer();
      return res.status;
    };

    let aborted = 0;
    const live: Promise<number>[] = [];
    const liveExpected: number[] = [];
    // Waves spread over more than half the view's refresh interval, so background refreshes start inside the storm.
    for (let w = 0; w < WAVES; w++) {
      const wave: Promise<unknown>[] = [];
      for (let i = 0; i < PER_WAVE; i++) {
        const k = kinds[i % kinds.length] ?? kinds[0];
        if (!k) throw new Error("no request kinds");
        const ac = new AbortController();
        wave.push(send(k, ac.signal).catch(() => void aborted++));
        // Cancelled at different points: before the work starts, during it, while answering.
        if (i % 3 === 0) ac.abort();
        else setTimeout(() => ac.abort(), i % 13);
        if (i % 10 === 0) {
          live.push(send(k));
          liveExpected.push(k.status);
        }
      }
      await Promise.all(wave);
      await sleep(1300);
    }
    expect(aborted).toBeGreaterThan(WAVES * PER_WAVE * 0.3);
    expect(await Promise.all(live)).toEqual(liveExpected);

    const later = await Promise.all(Array.from({ length: 120 }, (_, i) => kinds[i % kinds.length]).map(async (k) => (k ? `${k.path} ${await send(k)}` : "")));
    expect(later).toEqual(Array.from({ length: 120 }, (_, i) => kinds[i % kinds.length]).map((k) => (k ? `${k.path} ${k.status}` : "")));

    // The isolate's state still works: a revocation made here is refused here at once.
    const revoke = await SELF.fetch(BASE + "/oauth/revoke", { ...tokenForm("admin"), body: form({ token: tok }) });
    expect(revoke.status).toBe(200);
    expect(await send({ path: "/v1/devices", init: () => ({ headers: bearer }), status: 401 })).toBe(401);
  });
});
