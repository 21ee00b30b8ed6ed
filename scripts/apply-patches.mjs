#!/usr/bin/env node
// `postinstall`: applies patches/*.mjs to the installed packages they name (plain string edits, no
// dependency). Idempotent: a patched file carries the patch's marker and is left alone. Fails loudly when
// the installed version is not the one a patch was written for, or when an edit no longer matches once.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function fail(msg) {
  console.error(`apply-patches: ${msg}`);
  process.exit(1);
}

for (const name of readdirSync(path.join(ROOT, "patches")).filter((f) => f.endsWith(".mjs")).sort()) {
  const patch = await import(pathToFileURL(path.join(ROOT, "patches", name)).href);
  const dir = path.join(ROOT, "node_modules", patch.PACKAGE);
  // A production-only install may leave a package out; a patch of a missing package has nothing to do.
  if (!existsSync(dir)) continue;
  const version = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")).version;
  if (version !== patch.VERSION) fail(`${name} is for ${patch.PACKAGE} ${patch.VERSION}, installed is ${version}: rewrite the patch for it (or drop it)`);
  const file = path.join(dir, patch.FILE);
  let text = readFileSync(file, "utf8");
  if (text.startsWith(patch.MARKER)) continue;
  // Patched by another revision of the patch: edits cannot be undone in place, the package must be reinstalled.
  if (text.startsWith(patch.MARKER.slice(0, patch.MARKER.indexOf(":")))) fail(`${patch.PACKAGE} carries another revision of ${name}: reinstall it (rm -rf ${path.relative(ROOT, dir)} && npm ci)`);
  for (const [i, edit] of patch.EDITS.entries()) {
    const at = text.indexOf(edit.find);
    if (at < 0 || text.indexOf(edit.find, at + 1) >= 0) fail(`${name} edit ${i + 1} does not match exactly once in ${patch.PACKAGE}/${patch.FILE}`);
    text = text.slice(0, at) + edit.replace + text.slice(at + edit.find.length);
  }
  writeFileSync(file, `${patch.MARKER}\n${text}`);
  console.log(`apply-patches: ${patch.PACKAGE} ${patch.VERSION} patched (${patch.EDITS.length} edits, ${name})`);
}
