import type { Context } from "hono";
import { logger } from "./logger";

/**
 * The one error type every worker throws. `code` is a stable machine-readable
 * identifier; `detail` must be safe to show a client (never PHI, card data,
 * tokens or internal reasons).
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail?: string;
  readonly headers: Record<string, string>;
  readonly extra: Record<string, unknown>;

  constructor(
    status: number,
    code: string,
    detail?: string,
    options: { headers?: Record<string, string>; extra?: Record<string, unknown> } = {},
  ) {
    super(detail ?? code);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.headers = options.headers ?? {};
    this.extra = options.extra ?? {};
  }
}

/** HTTP reason phrases (RFC 9110 section 15): problem titles, and the status lines of FHIR Bundle entries. */
const TITLES: Record<number, string> = {
  200: "OK",
  201: "Created",
  204: "No Content",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  410: "Gone",
  412: "Precondition Failed",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

export function reasonPhrase(status: number): string | undefined {
  return TITLES[status];
}

export function statusTitle(status: number): string {
  return reasonPhrase(status) ?? "Error";
}

export const PROBLEM_TYPE_BASE = "urn:health-platform:problem:";

/** RFC 9457 problem details body for an ApiError. */
export function problemBody(err: ApiError, requestId: string | undefined): Record<string, unknown> {
  return {
    type: PROBLEM_TYPE_BASE + err.code,
    title: statusTitle(err.status),
    status: err.status,
    code: err.code,
    ...(err.detail ? { detail: err.detail } : {}),
    ...err.extra,
    ...(requestId ? { request_id: requestId } : {}),
  };
}

/** How a worker turns an ApiError into a response (problem+json, or OperationOutcome on FHIR routes). */
export type ErrorRenderer = (err: ApiError, c: Context) => Response;

export const renderProblem: ErrorRenderer = (err, c) =>
  new Response(JSON.stringify(problemBody(err, c.get("requestId"))), {
    status: err.status,
    headers: { "content-type": "application/problem+json", ...err.headers },
  });

/** Errors thrown by Hono itself (body limit, malformed JSON in validators) carry a status. */
function fromFrameworkError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (typeof err === "object" && err !== null && "getResponse" in err && "status" in err) {
    const status = Number((err as { status: unknown }).status);
    if (status === 413) return new ApiError(413, "payload_too_large", "The request body is too large.");
    if (status >= 400 && status < 500) return new ApiError(status, "bad_request", "The request could not be read.");
  }
  return undefined;
}

/** How long a client should wait before retrying after a storage failure (seconds). */
export const STORAGE_RETRY_AFTER_SECONDS = 1;

const STORAGE_MESSAGE = /\bD1_[A-Z_]+\b|\bSQLITE_[A-Z_]+\b|\bD1 DB\b/;
/**
 * D1 failures that are the caller's (our code's) mistake, not the store's state:
 * a constraint no route handled, a value of a type D1 cannot bind, a wrong
 * number of parameters. Those stay a generic 500.
 */
const NOT_STORAGE = /constraint failed|SQLITE_CONSTRAINT|\bD1_TYPE_ERROR\b|\bD1_COLUMN_NOTFOUND\b|\bSQLITE_(RANGE|MISMATCH)\b/;
/**
 * Except a trigger's RAISE(): none of our tables has a trigger, so one that
 * aborts a write is an operator's guard (a table put read-only for maintenance):
 * the store refuses writes for now.
 */
const GUARD_TRIGGER = /\bSQLITE_CONSTRAINT_TRIGGER\b/;

function causes(err: unknown): Error[] {
  const out: Error[] = [];
  for (let e: unknown = err; e instanceof Error && out.length < 5; e = e.cause) out.push(e);
  return out;
}

/**
 * Is this an error of the D1 store itself (unavailable, overloaded, reset, or a
 * database without its tables), as D1 reports it (`D1_ERROR: ...`,
 * `...: SQLITE_ERROR`, `D1 DB is overloaded ...`), possibly wrapped by drizzle
 * (`cause`)? Constraint failures are not: routes that expect one (idempotency
 * keys, the audit chain's seq race) catch them before they get here, and any
 * other is a bug; but see GUARD_TRIGGER.
 */
export function isStorageError(err: unknown): boolean {
  const chain = causes(err);
  if (chain.some((e) => GUARD_TRIGGER.test(e.message))) return true;
  if (chain.some((e) => NOT_STORAGE.test(e.message))) return false;
  return chain.some((e) => STORAGE_MESSAGE.test(e.message));
}

/** The stable label of a storage error for logs (`SQLITE_BUSY`, `D1_ERROR`): never its message (SQL, values). */
export function storageErrorCode(err: unknown): string {
  for (const e of causes(err)) {
    const m = /\b(SQLITE_[A-Z_]+|D1_[A-Z_]+)\b(?!.*\b(SQLITE|D1)_)/.exec(e.message);
    if (m?.[1]) return m[1];
  }
  return "D1";
}

/** The answer to a request the store could not serve: nothing was done, retry shortly. */
export function storageUnavailable(): ApiError {
  return new ApiError(503, "storage_unavailable", "The service's storage is unavailable; nothing was done. Retry later.", {
    headers: { "retry-after": String(STORAGE_RETRY_AFTER_SECONDS) },
  });
}

/** drizzle's wrapper puts the SQL and its parameters in the message: never logged. */
function loggableMessage(err: unknown): string | undefined {
  if (!(err instanceof Error) || err.message.startsWith("Failed query:")) return undefined;
  return err.message;
}

/**
 * The one `onError` of every worker: typed errors are rendered; D1 failures
 * become 503 `storage_unavailable` with `Retry-After`, logged with the request
 * id and the error's class and code only (its message holds SQL); anything else
 * becomes a generic 500 logged with the request id (the message stays in the
 * log, never in the response).
 */
export function createOnError(render: ErrorRenderer = renderProblem) {
  return (err: unknown, c: Context): Response => {
    const known = fromFrameworkError(err);
    if (known) return render(known, c);
    const requestId = c.get("requestId") as string | undefined;
    const errorClass = err instanceof Error ? err.name : typeof err;
    if (isStorageError(err)) {
      logger.error("storage_unavailable", { request_id: requestId, error_class: errorClass, error_code: storageErrorCode(err) });
      return render(storageUnavailable(), c);
    }
    logger.error("unhandled_error", { request_id: requestId, error_class: errorClass, message: loggableMessage(err) });
    return render(new ApiError(500, "internal_error", "An unexpected error occurred."), c);
  };
}

export function createNotFound(render: ErrorRenderer = renderProblem) {
  return (c: Context): Response => render(new ApiError(404, "not_found", "No route matches this path."), c);
}
