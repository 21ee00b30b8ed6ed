import { SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";

/**
 * Client spans for the queries of a D1 session. The tracing library wraps the D1
 * binding itself, but not the session `withSession` returns, through which every
 * phi query runs: without this the traces (and the round-trip counts taken from
 * them) would show no D1 at all. Same span names and attributes as the library's
 * (`DB batch`, `DB first` ...; `db.system` Cloudflare D1; the SQL text, whose
 * values are always bound, never inlined). Used only inside a traced request.
 */
const TERMINAL = new Set(["first", "all", "run", "raw"]);

function attributes(binding: string, operation: string, sql: string) {
  return { "db.system": "Cloudflare D1", "db.name": binding, "db.operation": operation, "db.statement": sql, binding_type: "D1" };
}

async function inSpan<T>(name: string, attrs: Record<string, string>, work: () => Promise<T>): Promise<T> {
  return trace.getTracer("D1").startActiveSpan(name, { kind: SpanKind.CLIENT, attributes: attrs }, async (span: Span) => {
    try {
      return await work();
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      span.setAttribute("error.type", err instanceof Error ? err.name : typeof err);
      throw err;
    } finally {
      span.end();
    }
  });
}

export function tracedSession(session: D1DatabaseSession, binding: string): D1DatabaseSession {
  const raw = new WeakMap<object, D1PreparedStatement>();
  const sqlOf = new WeakMap<object, string>();
  const wrap = (stmt: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const w = new Proxy(stmt, {
      get(target, prop) {
        const v: unknown = Reflect.get(target, prop, target);
        if (typeof v !== "function") return v;
        const fn = v as (...a: unknown[]) => unknown;
        if (prop === "bind") return (...values: unknown[]) => wrap(fn.apply(target, values) as D1PreparedStatement, sql);
        if (typeof prop === "string" && TERMINAL.has(prop)) {
          return (...args: unknown[]) => inSpan(`${binding} ${prop}`, attributes(binding, prop, sql), () => fn.apply(target, args) as Promise<unknown>);
        }
        return fn.bind(target);
      },
    });
    raw.set(w, stmt);
    sqlOf.set(w, sql);
    return w;
  };
  return new Proxy(session, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== "function") return v;
      const fn = v as (...a: unknown[]) => unknown;
      if (prop === "prepare") return (sql: string) => wrap(fn.call(target, sql) as D1PreparedStatement, sql);
      if (prop === "batch") {
        // As the library does: a span for the batch, and one child per statement carrying the D1 attributes.
        return (stmts: D1PreparedStatement[]) =>
          inSpan(`${binding} batch`, {}, async () => {
            const tracer = trace.getTracer("D1");
            const children = stmts.map((st) =>
              tracer.startSpan(`${binding} batch > query`, { kind: SpanKind.CLIENT, attributes: attributes(binding, "batch", sqlOf.get(st) ?? "") }),
            );
            try {
              return await (fn.call(target, stmts.map((st) => raw.get(st) ?? st)));
            } finally {
              for (const child of children) child.end();
            }
          });
      }
      return fn.bind(target);
    },
  });
}
