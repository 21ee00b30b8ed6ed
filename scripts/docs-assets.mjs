#!/usr/bin/env node
// The gateway's /docs page is Swagger UI, self-hosted: its files (about 1.9 MB, the bundle alone
// 1.7 MB) are served by Workers Static Assets, never bundled into the worker. This copies them
// from node_modules/swagger-ui-dist into the `[assets]` directory of wrangler.toml, under
// docs/assets/, so they are served at /docs/assets/<file>. Called before every wrangler run
// that reads the auth config (dev, e2e, tests, build, types, deploy); idempotent and quick.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { ROOT } from "./workers.mjs";

/** The `[assets] directory` of wrangler.toml. */
export const DOCS_ASSETS_DIR = path.join(ROOT, ".tmp", "docs-assets");
/** Where the files land inside it: the URL prefix /docs/assets/. */
export const DOCS_ASSETS_SUBDIR = path.join(DOCS_ASSETS_DIR, "docs", "assets");

/** The files /docs uses (and the licence texts that must travel with them). */
export const DOCS_ASSET_FILES = [
  "swagger-ui-bundle.js",
  "swagger-ui.css",
  "index.css",
  "favicon-32x32.png",
  "LICENSE",
  "NOTICE",
  "swagger-ui-bundle.js.LICENSE.txt",
];

function sourceDir() {
  const dir = path.join(ROOT, "node_modules", "swagger-ui-dist");
  if (!existsSync(path.join(dir, "package.json"))) throw new Error("swagger-ui-dist is not installed: run npm ci");
  return dir;
}

/** Copies what changed; removes files that are no longer listed. Returns the number copied. */
export function ensureDocsAssets({ quiet = true } = {}) {
  const src = sourceDir();
  mkdirSync(DOCS_ASSETS_SUBDIR, { recursive: true });
  let copied = 0;
  for (const f of DOCS_ASSET_FILES) {
    const from = path.join(src, f);
    const to = path.join(DOCS_ASSETS_SUBDIR, f);
    if (existsSync(to) && statSync(to).size === statSync(from).size && readFileSync(to).equals(readFileSync(from))) continue;
    copyFileSync(from, to);
    copied++;
  }
  for (const f of readdirSync(DOCS_ASSETS_SUBDIR)) {
    if (!DOCS_ASSET_FILES.includes(f)) rmSync(path.join(DOCS_ASSETS_SUBDIR, f), { recursive: true, force: true });
  }
  if (!quiet) {
    const version = JSON.parse(readFileSync(path.join(src, "package.json"), "utf8")).version;
    console.log(`docs assets: swagger-ui-dist ${version} in ${path.relative(ROOT, DOCS_ASSETS_SUBDIR)} (${copied} updated)`);
  }
  return copied;
}

if (import.meta.url === `file://${process.argv[1]}`) ensureDocsAssets({ quiet: false });
