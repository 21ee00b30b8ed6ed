import { OpenAPIHono } from "@hono/zod-openapi";
import { validationHook } from "../../../../shared/http";
import type { PaymentsEnv } from "../context";
import { SimulatedProcessor } from "../processor/simulated";
import type { CardProcessor } from "../processor/types";

/** Every router validates with the shared hook, so every 400 has one shape. */
export const router = () => new OpenAPIHono<PaymentsEnv>({ defaultHook: validationHook });

/** The processor in use for a tenant. Only the simulator exists today; a real adapter would be chosen here from config. */
export function processorFor(env: Env, tenantId: string): CardProcessor {
  return new SimulatedProcessor(env.DB, tenantId);
}
