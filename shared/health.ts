import { Hono } from "hono";
import { logger } from "./logger";
import { VERSION } from "./version";

export type Check = () => Promise<void>;

/** Readiness check of a D1 binding: one trivial query. */
export function d1Check(db: D1Database | undefined): Check {
  return async () => {
    if (!db) throw new Error("binding missing");
    await db.prepare("SELECT 1").first();
  };
}

/** Readiness check of a service binding: its `/health` must answer 200. */
export function serviceCheck(svc: Fetcher | undefined): Check {
  return async () => {
    if (!svc) throw new Error("binding missing");
    const res = await svc.fetch("https://internal/health");
    await res.body?.cancel();
    if (res.status !== 200) throw new Error(`status ${res.status}`);
  };
}

export interface HealthOptions<E extends object> {
  name: string;
  environment: (env: E) => string;
  checks: (env: E) => Record<string, Check>;
  timeoutMs?: number;
}

/**
 * `GET /health` (liveness: the isolate answers), `GET /readiness` (every
 * dependency answers; 503 naming the ones that do not) and `GET /` (name,
 * version, environment).
 */
export function healthRoutes<E extends object>(opts: HealthOptions<E>) {
  const app = new Hono<{ Bindings: E }>();
  const timeoutMs = opts.timeoutMs ?? 2000;
  app.get("/", (c) => c.json({ name: opts.name, version: VERSION, environment: opts.environment(c.env) }));
  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get("/readiness", async (c) => {
    const checks = opts.checks(c.env);
    const entries = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          await Promise.race([
            check(),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error("timeout")), timeoutMs);
            }),
          ]);
          return [name, "ok"] as const;
        } catch (err) {
          logger.warn("readiness_check_failed", {
            check: name,
            error_class: err instanceof Error ? err.name : typeof err,
          });
          return [name, "unavailable"] as const;
        } finally {
          if (timer !== undefined) clearTimeout(timer);
        }
      }),
    );
    const ready = entries.every(([, s]) => s === "ok");
    return c.json({ status: ready ? "ready" : "unavailable", checks: Object.fromEntries(entries) }, ready ? 200 : 503);
  });
  return app;
}
