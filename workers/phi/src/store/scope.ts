import type { Context, MiddlewareHandler } from "hono";
import { ApiError } from "../../../../shared/errors";
import { logger } from "../../../../shared/logger";
import type { PhiEnv } from "../env";
import { trace } from "@opentelemetry/api";
import { shardBinding, shardDatabase } from "./shards";
import { tracedSession } from "./traced-session";

/** What the store needs of a database: a D1 binding or one of its sessions. */
export type SqlDb = Pick<D1Database, "prepare" | "batch">;

/**
 * Where one request's queries run and whose rows they may touch: the tenant's
 * shard (through the request's D1 session) and the caller's tenant. Every
 * statement of the store binds `tenant`, so a tenant's request can neither read
 * nor write another tenant's rows: an id of another tenant behaves exactly like
 * an id that does not exist (404).
 */
export interface Scope {
  db: SqlDb;
  tenant: string;
}

declare module "hono" {
  interface ContextVariableMap {
    phiSession: D1DatabaseSession | undefined;
    phiBookmarkInvalid: boolean | undefined;
  }
}

/** The response (and request) header that carries a D1 session bookmark. */
export const BOOKMARK_HEADER = "x-d1-bookmark";
/** D1 bookmarks are dash-separated hex groups; anything else is refused before D1 sees it. */
const BOOKMARK = /^[0-9a-f]{1,64}(?:-[0-9a-f]{1,64}){0,7}$/;

/** The principal's shard database itself (the primary): 503 when this environment does not declare it. */
export function shardOf(c: Context<PhiEnv>): D1Database {
  const shard = c.get("principal").shard;
  const db = shardDatabase(c.env, shard);
  if (!db) {
    logger.error("phi_shard_missing", { shard, request_id: c.get("requestId") });
    throw new ApiError(503, "shard_unavailable", "The database of this tenant is not available in this environment.");
  }
  return db;
}

export function scopeOf(c: Context<PhiEnv>): Scope {
  return { db: c.get("phiSession") ?? shardOf(c), tenant: c.get("principal").tenantId };
}

/**
 * D1 Sessions API (read replicas): each request runs in one session of its
 * tenant's shard. A client that sends back the `x-d1-bookmark` of an earlier
 * response reads at least what that response saw (read-your-writes); without
 * one, a read may be served by any replica, a write starts at the primary.
 * Every response carries the session's latest bookmark. A malformed bookmark is
 * a 400, raised after the audit middleware so the refusal is recorded.
 */
export function phiSession(): MiddlewareHandler<PhiEnv> {
  return async (c, next) => {
    const raw = c.req.header(BOOKMARK_HEADER);
    const valid = validBookmark(raw);
    const writes = c.req.method !== "GET" && c.req.method !== "HEAD";
    const session = openSession(shardOf(c), c.get("principal").shard, valid ? raw : undefined, writes);
    c.set("phiSession", session);
    c.set("phiBookmarkInvalid", !valid);
    await next();
    const bookmark = session.getBookmark();
    if (bookmark) c.res.headers.set(BOOKMARK_HEADER, bookmark);
  };
}

/** An absent bookmark, or one shaped like D1's. */
export function validBookmark(raw: string | undefined): boolean {
  return raw === undefined || BOOKMARK.test(raw);
}

/**
 * The request's session of its shard `db`: at least at the client's (valid) bookmark; without one, a read may start
 * at any replica and a write at the primary. Inside a traced request (telemetry on) its queries are spans;
 * otherwise the session itself, no wrapper.
 */
export function openSession(db: D1Database, shard: number, bookmark: string | undefined, writes: boolean): D1DatabaseSession {
  const opened = db.withSession(bookmark ?? (writes ? "first-primary" : "first-unconstrained"));
  return trace.getActiveSpan() ? tracedSession(opened, shardBinding(shard)) : opened;
}

/** After the audit middleware: a malformed bookmark is refused (and recorded as such). */
export function refuseInvalidBookmark(c: Context<PhiEnv>): void {
  if (c.get("phiBookmarkInvalid")) throw new ApiError(400, "invalid_bookmark", `${BOOKMARK_HEADER} must be a bookmark returned by this API.`);
}
