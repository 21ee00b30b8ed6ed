import { createRoute } from "@hono/zod-openapi";
import { ApiError } from "../../../../shared/errors";
import { assertScopes } from "../../../../shared/principal";
import { beginAudit } from "../audit";
import { errorResponses } from "../schemas/common";
import { BalanceSchema, DailyQuery, DailySchema } from "../schemas/reports";
import { balances, dailySummary } from "../store/ledger";
import { router } from "./router";

const app = router();
const DAY_MS = 24 * 3600 * 1000;

/**
 * The UTC start of a `YYYY-MM-DD` day, or undefined when no such day exists: Date.parse rolls an impossible date
 * over (2024-02-30 is 1 March), so the day must come back unchanged from the time it parses to.
 */
function dayStart(day: string): number | undefined {
  const ms = Date.parse(day);
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 10) === day ? ms : undefined;
}

const balance = createRoute({
  method: "get",
  path: "/v1/payments/ledger/balance",
  summary: "Balance of every ledger account per currency (each currency's total is zero when the books balance)",
  responses: { 200: { content: { "application/json": { schema: BalanceSchema } }, description: "Balances" }, ...errorResponses },
});

app.openapi(balance, async (c) => {
  beginAudit(c, { action: "ledger.balance", resourceType: "ledger" });
  assertScopes(c.get("principal"), "audit:read");
  const byCurrency = new Map<string, { currency: string; accounts: Record<string, number>; total: number }>();
  for (const r of await balances(c.env.DB, c.get("principal").tenantId)) {
    const cur = byCurrency.get(r.currency) ?? { currency: r.currency, accounts: {}, total: 0 };
    cur.accounts[r.account] = r.balance;
    cur.total += r.balance;
    byCurrency.set(r.currency, cur);
  }
  const currencies = [...byCurrency.values()];
  return c.json({ object: "ledger_balance" as const, currencies, balanced: currencies.every((x) => x.total === 0) }, 200);
});

const daily = createRoute({
  method: "get",
  path: "/v1/payments/ledger/daily",
  summary: "Daily summary of ledger movements per currency and kind (UTC days, `to` inclusive, at most 366 days)",
  request: { query: DailyQuery },
  responses: { 200: { content: { "application/json": { schema: DailySchema } }, description: "Summary" }, ...errorResponses },
});

app.openapi(daily, async (c) => {
  beginAudit(c, { action: "ledger.daily", resourceType: "ledger" });
  assertScopes(c.get("principal"), "audit:read");
  const q = c.req.valid("query");
  const invalid = () => new ApiError(400, "invalid_range", "from and to must be real days, from <= to, at most 366 days apart.");
  const today = new Date().toISOString().slice(0, 10);
  const to = q.to ?? today;
  const toMs = dayStart(to);
  if (toMs === undefined) throw invalid();
  const from = q.from ?? new Date(toMs - 30 * DAY_MS).toISOString().slice(0, 10);
  const fromMs = dayStart(from);
  const endMs = toMs + DAY_MS;
  if (fromMs === undefined || endMs <= fromMs || endMs - fromMs > 366 * DAY_MS) throw invalid();
  const data = await dailySummary(c.env.DB, c.get("principal").tenantId, new Date(fromMs).toISOString(), new Date(endMs).toISOString());
  return c.json({ object: "ledger_daily" as const, from, to, data }, 200);
});

export default app;
