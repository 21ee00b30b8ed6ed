import type { Context } from "hono";
import { renderProblem, type ApiError, type ErrorRenderer } from "../../../../shared/errors";

export const FHIR_JSON = "application/fhir+json; charset=utf-8";

/** FHIR issue-type codes for our HTTP statuses (https://hl7.org/fhir/R4/valueset-issue-type.html). */
function issueCode(status: number): string {
  switch (status) {
    case 400:
      return "invalid";
    case 401:
      return "login";
    case 403:
      return "forbidden";
    case 404:
      return "not-found";
    case 405:
    case 406:
    case 415:
      return "not-supported";
    case 409:
    case 412:
      return "conflict";
    case 410:
      return "deleted";
    case 413:
      return "too-costly";
    case 422:
      return "processing";
    case 429:
      return "throttled";
    case 503:
      return "transient";
    default:
      return "exception";
  }
}

interface FieldError {
  path?: string;
  code?: string;
  message?: string;
}

/**
 * Validation texts. zod's messages for these codes describe the rule, never the
 * input, and pass through; any other code (an unknown element's message names the
 * element, which a client may have filled with PHI) gets a fixed text.
 */
const RULE_ONLY = new Set(["custom", "invalid_format", "invalid_type", "invalid_value", "too_big", "too_small"]);
const ISSUE_TEXT: Record<string, string> = {
  invalid_type: "Wrong type or missing element.",
  unrecognized_keys: "Unknown element (not in the FHIR R4 subset this server accepts).",
  invalid_value: "Not an allowed value.",
  invalid_format: "Invalid format.",
  too_big: "Too long or too large.",
  too_small: "Too short, too small or empty.",
  invalid_union: "Matches none of the allowed shapes.",
  not_multiple_of: "Not an allowed number.",
};

function issueText(e: FieldError): string {
  if (e.code && RULE_ONLY.has(e.code) && e.message) return e.message.slice(0, 300);
  return (e.code && ISSUE_TEXT[e.code]) ?? "Invalid element.";
}

/** An ApiError as a FHIR OperationOutcome (https://hl7.org/fhir/R4/operationoutcome.html). */
export function operationOutcome(err: ApiError, requestId: string | undefined): Record<string, unknown> {
  const severity = err.status >= 500 ? "fatal" : "error";
  const first = {
    severity,
    code: issueCode(err.status),
    details: { coding: [{ system: "urn:health-platform:problem", code: err.code }], text: err.detail ?? err.code },
    ...(requestId ? { diagnostics: `request ${requestId}` } : {}),
  };
  const fieldErrors = (Array.isArray(err.extra.errors) ? err.extra.errors : []) as FieldError[];
  const more = fieldErrors.map((e) => ({
    severity,
    code: "invalid",
    details: { text: issueText(e) },
    // Element paths only (never the offending value), as FHIRPath-like expressions.
    ...(e.path ? { expression: [e.path] } : {}),
  }));
  return { resourceType: "OperationOutcome", issue: [first, ...more] };
}

/** FHIR routes (the base, where Bundles are posted, included) answer errors as OperationOutcome; health and audit routes as problem+json (RFC 9457). */
export function isFhirPath(pathname: string): boolean {
  return /^\/v1\/phi\/?$/.test(pathname) || /^\/v1\/phi\/(Patient|Observation|metadata|\$export|\$export-status|\$export-file)(\/|$)/.test(pathname);
}

export const renderPhiError: ErrorRenderer = (err: ApiError, c: Context) => {
  if (!isFhirPath(new URL(c.req.url).pathname)) return renderProblem(err, c);
  return new Response(JSON.stringify(operationOutcome(err, c.get("requestId"))), {
    status: err.status,
    headers: { "content-type": FHIR_JSON, ...err.headers },
  });
};
