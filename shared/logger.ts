/**
 * One JSON line per event, written with console.log so Workers Logs and
 * `wrangler tail` pick it up. Callers pass only safe fields: never PHI, card
 * data, secrets or tokens (see DESIGN.md, "Cross-cutting").
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, string | number | boolean | null | undefined | string[]>;

let base: LogFields = {};

/** Sets the fields every line carries (service, environment). Called once per worker. */
export function setLogContext(fields: LogFields): void {
  base = { ...base, ...fields };
}

function write(level: LogLevel, msg: string, fields: LogFields): void {
  const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

export const logger = {
  debug: (msg: string, fields: LogFields = {}) => write("debug", msg, fields),
  info: (msg: string, fields: LogFields = {}) => write("info", msg, fields),
  warn: (msg: string, fields: LogFields = {}) => write("warn", msg, fields),
  error: (msg: string, fields: LogFields = {}) => write("error", msg, fields),
};
