import { z } from "@hono/zod-openapi";

// RFC 9457 problem details, as shared/errors.ts renders every error: one schema for every worker.
export { ProblemSchema as Problem, problemResponse as problem } from "../../../../shared/openapi";

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});
