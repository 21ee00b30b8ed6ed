#!/usr/bin/env node
// Bulk Data export of 10,000 patients on the built bundles (Miniflare: real gateway, real tokens, the
// job's Durable Object and alarms, local D1 and R2): the time from the kick-off to the manifest, then
// the download. Seeding is growth.mjs's: the first EXPORT_BENCH_API patients through the API (so the
// audit chain and the actor are real), the rest written straight into phi's D1 with rows made by phi's
// own code. Standalone: `node bench/export.mjs`; prints one JSON line per figure and a summary.
//   EXPORT_BENCH_PATIENTS=10000   patients to store and export
//   EXPORT_BENCH_API=200          of them created through the API
import { bearer, phiCode, platform, seed, seedDirect } from "./growth.mjs";

const PATIENTS = Number(process.env.EXPORT_BENCH_PATIENTS ?? 10_000);
const API = Math.min(PATIENTS, Number(process.env.EXPORT_BENCH_API ?? 200));

const p = await platform();
try {
  const writer = bearer(p, "phi:write");
  const reader = bearer(p, "phi:read");
  const t0 = performance.now();
  await seed(p, writer, 0, API);
  if (PATIENTS > API) await seedDirect(p, await phiCode(), API, PATIENTS);
  console.log(JSON.stringify({ what: "seeded", patients: PATIENTS, seconds: (performance.now() - t0) / 1000 }));

  const start = performance.now();
  const kick = await fetch(`${p.url}/v1/phi/$export`, { headers: { ...(await reader()), prefer: "respond-async" } });
  if (kick.status !== 202) throw new Error(`kick-off: ${kick.status} ${await kick.text()}`);
  const status = kick.headers.get("content-location");
  let polls = 0;
  let manifest;
  let lastProgress = "";
  for (;;) {
    polls++;
    const r = await fetch(status, { headers: await reader() });
    if (r.status === 200) {
      manifest = await r.json();
      break;
    }
    if (r.status !== 202) throw new Error(`status: ${r.status} ${await r.text()}`);
    lastProgress = r.headers.get("x-progress") ?? lastProgress;
    await r.body?.cancel();
    await new Promise((res) => setTimeout(res, 100));
  }
  const exportSeconds = (performance.now() - start) / 1000;
  const count = manifest.output.reduce((n, o) => n + o.count, 0);
  if (count !== PATIENTS) throw new Error(`manifest counts ${count} resources, expected ${PATIENTS}`);

  const dl = performance.now();
  let lines = 0;
  let bytes = 0;
  const ids = new Set();
  for (const f of manifest.output) {
    const r = await fetch(f.url, { headers: await reader() });
    if (r.status !== 200) throw new Error(`download: ${r.status}`);
    const text = new TextDecoder().decode(await r.arrayBuffer());
    bytes += text.length;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      lines++;
      ids.add(JSON.parse(line).id);
    }
  }
  const downloadSeconds = (performance.now() - dl) / 1000;
  if (lines !== PATIENTS || ids.size !== PATIENTS) throw new Error(`downloaded ${lines} lines, ${ids.size} distinct ids`);
  const result = {
    what: "export",
    patients: PATIENTS,
    kickoff_to_manifest_seconds: Number(exportSeconds.toFixed(2)),
    patients_per_second: Math.round(PATIENTS / exportSeconds),
    polls,
    last_progress: lastProgress,
    files: manifest.output.length,
    download_seconds: Number(downloadSeconds.toFixed(2)),
    megabytes: Number((bytes / 1e6).toFixed(1)),
  };
  console.log(JSON.stringify(result));
} finally {
  await p.dispose();
}
