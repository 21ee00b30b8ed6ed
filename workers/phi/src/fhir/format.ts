import type { Context, MiddlewareHandler } from "hono";
import { ApiError } from "../../../../shared/errors";

/**
 * FHIR R4 http.html#mime-type and #parameters: JSON only, named as `application/fhir+json`,
 * plain `application/json` (which many generic HTTP clients send), or the `_format`
 * shorthand `json`. XML and Turtle are not offered.
 */
const JSON_FORMATS = new Set(["json", "application/json", "application/fhir+json", "application/json+fhir"]);

/** A `_format` value this server can answer in (parameters such as `;fhirVersion=4.0` allowed). */
export function acceptableFormat(raw: string): boolean {
  return JSON_FORMATS.has(raw.toLowerCase().split(";")[0]?.trim() ?? "");
}

/** A request body media type a FHIR write accepts (the `json` shorthand is a `_format` value only). */
export function acceptableBodyType(contentType: string | undefined): boolean {
  const t = (contentType ?? "").toLowerCase().split(";")[0]?.trim() ?? "";
  return t !== "json" && JSON_FORMATS.has(t);
}

/**
 * `_format` on any FHIR route: a format we cannot produce is a 406 (R4 http.html#parameters);
 * `_format=application/json` is answered with that media type, so a client asking for plain
 * JSON gets a Content-Type it recognises.
 */
export function fhirFormat(): MiddlewareHandler {
  return async (c, next) => {
    const format = requestedFormat(c);
    await next();
    answerInFormat(c, format);
  };
}

/** The request's `_format` (null when absent; the URL is parsed only when it names one); 406 when we cannot answer in it. */
export function requestedFormat(c: Context): string | null {
  const format = c.req.url.includes("_format") ? new URL(c.req.url).searchParams.get("_format") : null;
  if (format !== null && !acceptableFormat(format)) {
    throw new ApiError(406, "unsupported_format", "_format must be json, application/fhir+json or application/json.");
  }
  return format;
}

/** After the handler: `_format=application/json` is answered with that media type. */
export function answerInFormat(c: Context, format: string | null): void {
  if (format?.toLowerCase().startsWith("application/json") && (c.res.headers.get("content-type") ?? "").startsWith("application/fhir+json")) {
    c.res.headers.set("content-type", "application/json; charset=utf-8");
  }
}
