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

const TITLES: Record<number, string> = {
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

export function statusTitle(status: number): string {
  return TITLES[status] ?? "Error";
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

/**
 * The one `onError` of every worker: typed errors are rendered, anything else
 * becomes a generic 500 logged with the request id (the message and stack stay
 * in the log, never in the response).
 */
export function createOnError(render: ErrorRenderer = renderProblem) {
  return (err: unknown, c: Context): Response => {
    const known = fromFrameworkError(err);
    if (known) return render(known, c);
    logger.error("unhandled_error", {
      request_id: c.get("requestId") as string | undefined,
      error_class: err instanceof Error ? err.name : typeof err,
      message: err instanceof Error ? err.message : undefined,
    });
    return render(new ApiError(500, "internal_error", "An unexpected error occurred."), c);
  };
}

export function createNotFound(render: ErrorRenderer = renderProblem) {
  return (c: Context): Response => render(new ApiError(404, "not_found", "No route matches this path."), c);
}
