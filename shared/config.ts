import { z } from "zod";

/**
 * Config parsing: env vars and secrets arrive as strings; each worker declares a
 * zod schema for what it needs and reads a typed, validated config. The result
 * is cached per env object and schema, so parsing happens once per isolate, not per request.
 */
const cache = new WeakMap<object, Map<z.ZodType, unknown>>();

/**
 * Set by the telemetry wrapper on an env it hands to the tracing library, which
 * wraps the env in a new proxy on every request: the cache keys on the env
 * behind the proxy, or parsing would run per request.
 */
export const ENV_IDENTITY: unique symbol = Symbol("env identity");

function identityOf(env: object): object {
  const id: unknown = Reflect.get(env, ENV_IDENTITY);
  return typeof id === "object" && id !== null ? id : env;
}

export class ConfigError extends Error {
  constructor(issues: string[]) {
    // Names the settings only, never their values (they may be secrets).
    super(`invalid configuration: ${issues.join("; ")}`);
    this.name = "ConfigError";
  }
}

export function parseConfig<T extends z.ZodType>(schema: T, env: object): z.infer<T> {
  const key = identityOf(env);
  let parsed = cache.get(key);
  if (!parsed) {
    parsed = new Map<z.ZodType, unknown>();
    cache.set(key, parsed);
  }
  const hit = parsed.get(schema);
  if (hit !== undefined) return hit as z.infer<T>;
  const r = schema.safeParse(env);
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => `${i.path.join(".")}: ${i.code}`));
  parsed.set(schema, r.data);
  return r.data;
}

/** Common coercions for string env vars. */
export const envInt = (def: number) =>
  z
    .string()
    .regex(/^\d+$/)
    .transform(Number)
    .optional()
    .transform((v) => v ?? def);

export const envBool = (def: boolean) =>
  z
    .enum(["true", "false", "1", "0"])
    .optional()
    .transform((v) => (v === undefined ? def : v === "true" || v === "1"));

export const EnvironmentName = z.enum(["local", "test", "staging", "production"]);
export type EnvironmentName = z.infer<typeof EnvironmentName>;
