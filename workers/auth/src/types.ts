import type { AppVariables } from "../../../shared/http";

/** Hono environment of the auth worker. */
export type AuthEnv = { Bindings: Env; Variables: AppVariables };
