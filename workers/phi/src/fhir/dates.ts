/**
 * FHIR date arithmetic for search (https://hl7.org/fhir/R4/search.html#date): a value
 * stands for the whole interval it names (2020-05 is all of May). Values without a zone
 * are read as UTC (documented in the README).
 */
export interface Interval {
  lo: string;
  hi: string;
}

const PARTS = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** The UTC interval a FHIR date / dateTime / instant covers, or undefined if it is not one. */
export function dateInterval(value: string): Interval | undefined {
  const m = PARTS.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, hh, mi, ss, frac, zone] = m;
  const year = Number(y);
  if (hh !== undefined) {
    if (zone === undefined) return undefined;
    const base = Date.parse(`${y}-${mo}-${d}T${hh}:${mi}:${ss ?? "00"}${frac ? "." + frac.slice(0, 3) : ""}${zone}`);
    if (Number.isNaN(base)) return undefined;
    const hiMs = ss === undefined ? base + 59_999 : frac === undefined ? base + 999 : base;
    return { lo: new Date(base).toISOString(), hi: new Date(hiMs).toISOString() };
  }
  const month = mo === undefined ? undefined : Number(mo);
  const day = d === undefined ? undefined : Number(d);
  if (month !== undefined && (month < 1 || month > 12)) return undefined;
  const start = Date.UTC(year, (month ?? 1) - 1, day ?? 1);
  const check = new Date(start);
  if (day !== undefined && check.getUTCDate() !== day) return undefined;
  const end =
    day !== undefined
      ? Date.UTC(year, (month ?? 1) - 1, day + 1)
      : month !== undefined
        ? Date.UTC(year, month, 1)
        : Date.UTC(year + 1, 0, 1);
  return { lo: new Date(start).toISOString(), hi: new Date(end - 1).toISOString() };
}
