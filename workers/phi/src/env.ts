import type { AppVariables } from "../../../shared/http";

/** The Hono environment of every phi route: generated bindings, shared request variables. */
export type PhiEnv = { Bindings: Env; Variables: AppVariables };
