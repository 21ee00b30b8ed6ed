// GET /docs in a real browser: Debian's Chromium, headless, driven by playwright-core. The page
// loads with no console error, no page error and no failed request (a CSP violation is a console
// error, so this also proves the page's policy is enough); every tag of the document is shown; an
// operation expands; "Authorize" (client credentials, the bootstrap admin) gets a token from
// /oauth/token and "Try it out" on GET /introspect answers 200 with an active token.
// Screenshot (taken before any credential is typed): e2e/artifacts/docs.png.
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { ROOT } from "../../scripts/workers.mjs";

export const name = "docs: /docs in headless Chromium (no console errors, every tag, expand, Authorize, Try it out)";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const SCREENSHOT = path.join(ROOT, "e2e", "artifacts", "docs.png");
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const TIMEOUT = 30_000;

export default async function (ctx) {
  const { assert } = ctx;
  if (!existsSync(CHROMIUM)) {
    if (process.env.E2E_SKIP_BROWSER === "1") return ctx.log(`skipped: no browser at ${CHROMIUM} (E2E_SKIP_BROWSER=1)`);
    throw new Error(`no browser at ${CHROMIUM}: apt-get install chromium, set CHROMIUM_PATH, or E2E_SKIP_BROWSER=1 to skip`);
  }
  const doc = (await ctx.json("/openapi.json")).body;
  const tags = doc.tags.map((t) => t.name);
  for (const t of ["auth", "phi", "payments", "synthetic-phi", "devices"]) assert.ok(tags.includes(t), `document tag ${t}`);

  const t0 = Date.now();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: TIMEOUT });
  const times = { launch: Date.now() - t0 };
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    page.setDefaultTimeout(TIMEOUT);
    const problems = [];
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console error: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("requestfailed", (r) => problems.push(`request failed: ${r.method()} ${new URL(r.url()).pathname} ${r.failure()?.errorText}`));
    page.on("response", (r) => {
      if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${new URL(r.url()).pathname}`);
    });

    let t = Date.now();
    const res = await page.goto(`${ctx.base}/docs`, { waitUntil: "load" });
    assert.equal(res?.status(), 200);
    // Rendered from the document: one section per tag, each with its operations.
    await page.locator(".opblock-tag-section .opblock").first().waitFor();
    times.render = Date.now() - t;
    const shown = await page.locator(".opblock-tag").evaluateAll((els) => els.map((e) => e.getAttribute("data-tag")));
    assert.deepEqual([...shown].sort(), [...tags].sort(), `tags shown: ${shown.join(", ")}`);
    const opCount = await page.locator(".opblock").count();
    const documented = Object.values(doc.paths).reduce((n, item) => n + ["get", "post", "put", "delete", "patch"].filter((m) => item[m]).length, 0);
    assert.equal(opCount, documented, "every documented operation is listed");
    assert.equal(await page.locator(".info .title").first().innerText().then((s) => s.includes(doc.info.title)), true);

    // Expand one operation: its parameters/body and responses appear.
    t = Date.now();
    const token = page.locator('.opblock-post:has(.opblock-summary-path[data-path="/oauth/token"])').first();
    await token.locator(".opblock-summary-control").click();
    const body = token.locator(".opblock-body");
    await body.waitFor();
    const bodyText = await body.innerText();
    for (const word of ["Request body", "grant_type", "Responses", "200"]) assert.ok(bodyText.includes(word), `expanded operation shows ${word}`);
    await token.locator(".try-out__btn").waitFor();
    times.expand = Date.now() - t;
    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });

    // Authorize: client credentials with the bootstrap admin, one scope, against /oauth/token.
    t = Date.now();
    await page.locator(".auth-wrapper .btn.authorize").click();
    const modal = page.locator(".modal-ux");
    await modal.waitFor();
    await modal.locator('input[id^="client_id_"]').fill(ctx.creds.id);
    await modal.locator('input[id^="client_secret_"]').fill(ctx.creds.secret);
    // The checkbox itself is hidden behind its styled label.
    const adminScope = await modal.locator('input[type="checkbox"][data-value="admin"]').getAttribute("id");
    await modal.locator(`label[for="${adminScope}"]`).click();
    assert.equal(await modal.locator(`input[id="${adminScope}"]`).isChecked(), true);
    const tokenCall = page.waitForResponse((r) => new URL(r.url()).pathname === "/oauth/token");
    await modal.locator(".auth-btn-wrapper .btn.modal-btn.authorize").click();
    assert.equal((await tokenCall).status(), 200, "token endpoint answered the page");
    await modal.locator(".auth-btn-wrapper .btn.modal-btn", { hasText: "Logout" }).waitFor();
    await modal.locator(".btn-done").click();
    await modal.waitFor({ state: "detached" });
    times.authorize = Date.now() - t;

    // Try it out: GET /introspect with the page's token says the token is active with that scope.
    t = Date.now();
    const intro = page.locator('.opblock-get:has(.opblock-summary-path[data-path="/introspect"])').first();
    await intro.locator(".opblock-summary-control").click();
    await intro.locator(".try-out__btn").click();
    const call = page.waitForResponse((r) => new URL(r.url()).pathname === "/introspect");
    await intro.locator(".execute").click();
    const answered = await call;
    assert.equal(answered.status(), 200);
    const live = intro.locator(".live-responses-table tr.response .response-col_status").first();
    await live.waitFor();
    assert.equal((await live.innerText()).trim(), "200");
    const state = await answered.json();
    assert.equal(state.active, true);
    assert.equal(state.scope, "admin");
    times.tryItOut = Date.now() - t;

    assert.deepEqual(problems, [], problems.join("\n"));
    ctx.log(
      `${shown.length} tags, ${opCount} operations; launch ${times.launch} ms, render ${times.render} ms, expand ${times.expand} ms, authorize ${times.authorize} ms, try it out ${times.tryItOut} ms; screenshot ${path.relative(ROOT, SCREENSHOT)}`,
    );
  } finally {
    await browser.close();
  }
}
