import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import type { Env as HonoEnv } from "hono";
import { VERSION } from "./version";

/** RFC 9457 problem details, as every non-FHIR error is rendered (shared/errors.ts). */
export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    code: z.string(),
    detail: z.string().optional(),
    request_id: z.string().optional(),
  })
  .passthrough()
  .openapi("Problem");

/** An error response of a route, for its OpenAPI declaration. */
export const problemResponse = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: ProblemSchema } },
});

/**
 * `GET /openapi.json` on an internal worker: its own OpenAPI 3.1 document,
 * built from the zod schemas its routes validate with. The gateway merges them.
 */
export function serveOpenApi<E extends HonoEnv>(app: OpenAPIHono<E>, title: string): void {
  app.get("/openapi.json", (c) =>
    c.json(app.getOpenAPI31Document({ openapi: "3.1.0", info: { title, version: VERSION } })),
  );
}
