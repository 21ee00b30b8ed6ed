// Builds every worker's bundle once per test run; tests load the other workers from them.
import { buildWorker } from "./build.mjs";
import { WORKERS } from "./workers.mjs";

export default function setup() {
  for (const w of WORKERS) buildWorker(w.name);
}
