/**
 * Counts D1 round trips: the real binding, wrapped so that each call that reaches D1
 * (`first`, `all`, `run`, `raw` on a statement, `batch`, `exec`, on the binding or a session of it) is counted once,
 * then forwarded unchanged. Nothing is faked: every query runs against the real database.
 */
export interface CountedD1 {
  db: D1Database;
  roundTrips(): number;
}

const TERMINAL = new Set<PropertyKey>(["first", "all", "run", "raw"]);

export function countD1(real: D1Database): CountedD1 {
  let n = 0;
  const unwrapped = new WeakMap<object, D1PreparedStatement>();
  const wrapStatement = (s: D1PreparedStatement): D1PreparedStatement => {
    const w = new Proxy(s, {
      get(target, prop) {
        if (prop === "bind") return (...values: unknown[]) => wrapStatement(target.bind(...values));
        const v: unknown = Reflect.get(target, prop, target);
        if (typeof v !== "function") return v;
        if (TERMINAL.has(prop)) {
          return (...args: unknown[]) => {
            n++;
            return (v as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return (v as (...a: unknown[]) => unknown).bind(target);
      },
    });
    unwrapped.set(w, s);
    return w;
  };
  // The binding and each of its D1 sessions (withSession) count the same way.
  const wrapDb = <T extends object>(real: T): T =>
    new Proxy(real, {
      get(target, prop) {
        const v: unknown = Reflect.get(target, prop, target);
        if (typeof v !== "function") return v;
        const fn = v as (...a: unknown[]) => unknown;
        if (prop === "prepare") return (sql: string) => wrapStatement(fn.call(target, sql) as D1PreparedStatement);
        if (prop === "batch") {
          return (stmts: D1PreparedStatement[]) => {
            n++;
            return fn.call(target, stmts.map((s) => unwrapped.get(s) ?? s));
          };
        }
        if (prop === "exec") {
          return (sql: string) => {
            n++;
            return fn.call(target, sql);
          };
        }
        if (prop === "withSession") return (...args: unknown[]) => wrapDb(fn.apply(target, args) as object);
        return fn.bind(target);
      },
    });
  const db = wrapDb(real);
  return { db, roundTrips: () => n };
}
