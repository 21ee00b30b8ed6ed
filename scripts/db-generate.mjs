#!/usr/bin/env node
// drizzle-kit generate for every worker with a D1 schema. drizzle-kit resolves its paths against the
// working directory, so it runs from each worker's folder. Usage: npm run db:generate -- [--name <migration>]
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { ROOT, WORKERS } from "./workers.mjs";

const argv = process.argv.slice(2);
const i = argv.indexOf("--name");
const name = i >= 0 ? argv[i + 1] : undefined;
for (const w of WORKERS) {
  const dir = path.join(ROOT, "workers", w.name);
  if (!existsSync(path.join(dir, "drizzle.config.ts"))) continue;
  console.log(`== ${w.name}`);
  execFileSync(path.join(ROOT, "node_modules", ".bin", "drizzle-kit"), ["generate", ...(name ? ["--name", name] : [])], {
    cwd: dir,
    stdio: "inherit",
  });
}
