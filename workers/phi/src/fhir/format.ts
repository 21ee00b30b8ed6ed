import type { MiddlewareHandler } from "hono";
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
    const format = new URL(c.req.url).searchParams.get("_format");
    if (format !== null && !acceptableFormat(format)) {
      throw new ApiError(406, "unsupported_format", "_format must be json, application/fhir+json or application/json.");
    }
    await next();
    if (format?.toLowerCase().startsWith("application/json") && (c.res.headers.get("content-type") ?? "").startsWith("application/fhir+json")) {
      c.res.headers.set("content-type", "application/json; charset=utf-8");
    }
  };
}
