import { createRoute, z } from "@hono/zod-openapi";
import { ApiError } from "../../../../shared/errors";
import { decideBundle, enforce } from "../access";
import { phiSettings } from "../config";
import { BUNDLE_MAX_ENTRIES, BundleIn } from "../fhir/bundle";
import { FHIR_JSON } from "../fhir/outcome";
import { returnPreference } from "../fhir/prefer";
import { publicBase } from "../service/base-url";
import { runBatch } from "../service/batch";
import { runTransaction } from "../service/transaction";
import { FHIR_REQUEST, fhirErrors, fhirJson, phiRouter, requireFhirJson } from "./openapi";

/**
 * `POST /v1/phi`: a transaction or batch Bundle (FHIR R4 http.html#transaction).
 * Every scope any entry needs is checked first (the gateway checked the same with
 * the same function), so a read-only token cannot write by wrapping a write in a Bundle.
 */
export const bundleRoutes = phiRouter();

const ResponseBundleOut = z
  .object({
    resourceType: z.literal("Bundle"),
    type: z.enum(["transaction-response", "batch-response"]),
    entry: z.array(z.object({ response: z.object({ status: z.string() }).catchall(z.unknown()) }).catchall(z.unknown())).optional(),
  })
  .catchall(z.unknown())
  .openapi("BundleResponse");

bundleRoutes.openapi(
  createRoute({
    method: "post",
    path: "/v1/phi",
    description:
      `A \`transaction\` (all entries or none) or \`batch\` (each entry on its own) Bundle of at most ${BUNDLE_MAX_ENTRIES} entries: ` +
      "POST (create, `ifNoneExist` for Patient), PUT and DELETE (Patient, `ifMatch`), GET (read) of Patient and Observation. " +
      "Needs `phi:read` for GET entries and `phi:write` for the others (every scope its entries need; `phi:read` when it names none).",
    middleware: [requireFhirJson()],
    request: { body: { content: { [FHIR_REQUEST]: { schema: BundleIn } }, required: true } },
    responses: {
      200: { description: "transaction-response or batch-response Bundle", content: fhirJson(ResponseBundleOut) },
      ...fhirErrors(404, 405, 409, 410, 412, 413, 415, 422),
    },
  }),
  async (c) => {
    const bundle = c.req.valid("json");
    const entries = bundle.entry ?? [];
    // Each entry as its own request would be judged, SMART scopes included (the gateway checked the coarse scopes).
    const base = publicBase(c);
    enforce(decideBundle(c.get("principal").scopes, entries.map((e) => ({ method: e.request.method, url: e.request.url })), base));
    if (entries.length > BUNDLE_MAX_ENTRIES) throw new ApiError(413, "too_many_entries", `A Bundle holds at most ${BUNDLE_MAX_ENTRIES} entries.`);
    const cfg = await phiSettings(c);
    const pref = returnPreference(c.req.header("prefer"));
    const now = new Date();
    const run = bundle.type === "transaction" ? runTransaction : runBatch;
    const out = await run(c, cfg, entries, base, pref, now);
    return c.json(out, 200, { "content-type": FHIR_JSON });
  },
);
