import type { Context } from "hono";
import { createOnError } from "../../../shared/errors";
import { applySecurityHeaders, finishRequest, incomingRequestId } from "../../../shared/http";
import { setLogLevel } from "../../../shared/logger";
import { PRINCIPAL_HEADER, verifyPrincipal } from "../../../shared/principal";
import { decideScope } from "./access";
import { parsePurpose, traceIdOf } from "./audit/describe";
import type { AuditState } from "./audit/middleware";
import { actorFrom } from "./audit/trail";
import type { PhiEnv } from "./env";
import { renderPhiError } from "./fhir/outcome";
import { RESOURCE_ID } from "./routes/openapi";
import { readResource } from "./service/read";
import { BOOKMARK_HEADER, openSession, validBookmark } from "./store/scope";
import { shardDatabase } from "./store/shards";

type Fetch = (req: Request, env: Env, ctx: ExecutionContext) => Promise<Response>;

/** `GET /v1/phi/Patient/<id>` or `/Observation/<id>`, exactly: no query, no further segment, nothing encoded. */
const READ = /^https?:\/\/[^/?#]+\/v1\/phi\/(Patient|Observation)\/([^/?#%]+)$/;

/** The errors of the read, answered as the app answers them (an OperationOutcome; a generic 500, logged). */
const onError = createOnError(renderPhiError);

/**
 * phi's read of one resource without the Hono app, for the requests that make up most of its traffic, as the
 * gateway's proxy path does for the gateway (workers/auth/src/gateway/proxy.ts): a GET of `Patient/<id>` or
 * `Observation/<id>` whose principal verifies, whose purpose of use parses, whose bookmark (if any) is well formed
 * and whose scopes allow the read. It does what the app does for them, in one function: the request id and log
 * level, the tenant's session, the audit state, the read itself through the routes' own `readResource` (the version
 * and its record in one batch; 404 and 410 recorded and answered as OperationOutcome), the bookmark, the security
 * headers, the access line and metrics. Per request no router, no context with its closures, no middleware chain,
 * no validator.
 *
 * Everything else goes to the app unchanged, before anything was recorded or answered: other methods and paths,
 * a query string (`_format`, `_elements`...), an id the routes would refuse, and any refusal (401, 400, 403, a
 * shard not bound: the app gives the exact answer and records it). So does a read whose batch failed as a whole
 * (nothing was written, so nothing was recorded): the app takes it from the start, which tries the store once
 * more and, if it fails again, records the failure and answers 503, as for any request it serves.
 */
export function readFirst(app: { fetch: (req: Request, env: Env, ctx: ExecutionContext) => Response | Promise<Response> }): Fetch {
  const toApp: Fetch = async (req, env, ctx) => app.fetch(req, env, ctx);
  return (req, env, ctx) => {
    const m = req.method === "GET" ? READ.exec(req.url) : null;
    const type = m?.[1] as "Patient" | "Observation" | undefined;
    const id = m?.[2];
    if (!type || !id || !RESOURCE_ID.test(id)) return toApp(req, env, ctx);
    return read(toApp, type, id, req, env, ctx);
  };
}

async function read(toApp: Fetch, type: "Patient" | "Observation", id: string, req: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const start = performance.now();
  const h = req.headers;
  const verified = await verifyPrincipal(env.GATEWAY_HMAC_KEY, h.get(PRINCIPAL_HEADER) ?? undefined, Math.floor(Date.now() / 1000));
  const principal = verified.ok ? verified.principal : undefined;
  const db = principal ? shardDatabase(env, principal.shard) : undefined;
  const purpose = parsePurpose(h.get("x-purpose-of-use") ?? undefined);
  const bookmark = h.get(BOOKMARK_HEADER) ?? undefined;
  if (!principal || !db || purpose === undefined || !validBookmark(bookmark) || !decideScope(principal.scopes, "read", type).ok) {
    return toApp(req, env, ctx);
  }
  setLogLevel((env as { LOG_LEVEL?: string }).LOG_LEVEL);
  const requestId = incomingRequestId(h.get("x-request-id"));
  const session = openSession(db, principal.shard, bookmark, false);
  const audit: AuditState = {
    actor: actorFrom(principal, { purposeOfUse: purpose, requestId, traceId: traceIdOf(h.get("traceparent") ?? undefined) }),
    done: false,
    patients: [],
  };
  const c = new ReadContext(req, env, ctx, { principal, requestId, phiSession: session, phiBookmarkInvalid: false, phiAudit: audit });
  // The read path's helpers take Hono's Context and use only what ReadContext has (the tests run them through it).
  const hc = c as unknown as Context<PhiEnv>;
  let res: Response;
  try {
    const { resource, headers } = await readResource(hc, "read", type, id);
    res = new Response(JSON.stringify(resource), { status: 200, headers });
  } catch (err) {
    if (!audit.done) return toApp(req, env, ctx);
    res = onError(err, hc);
  }
  const latest = session.getBookmark();
  if (latest) res.headers.set(BOOKMARK_HEADER, latest);
  applySecurityHeaders(res.headers);
  res.headers.set("x-request-id", requestId);
  const seconds = (performance.now() - start) / 1000;
  finishRequest("phi", "debug", env, ctx, { requestId, headers: h, method: "GET", route: `/v1/phi/${type}/:id`, status: res.status, seconds, sub: principal.sub });
  return res;
}

/**
 * The members of Hono's Context that the read uses: `env`, `executionCtx`, `req.url`, `req.method`,
 * `req.header(name)`, `get` and `set`, over the variables the app's middleware would have set. Nothing else, so
 * a helper that came to need more would fail the tests that run reads through it.
 */
class ReadContext {
  readonly req: { readonly url: string; readonly method: string; readonly raw: Request; header(name: string): string | undefined };
  readonly #vars: Map<string, unknown>;

  constructor(
    request: Request,
    readonly env: Env,
    readonly executionCtx: ExecutionContext,
    vars: Record<string, unknown>,
  ) {
    this.req = { url: request.url, method: request.method, raw: request, header: (name) => request.headers.get(name) ?? undefined };
    this.#vars = new Map(Object.entries(vars));
  }

  get(key: string): unknown {
    return this.#vars.get(key);
  }

  set(key: string, value: unknown): void {
    this.#vars.set(key, value);
  }
}
