/**
 * In-isolate metric aggregation: counters, up-down counters and histograms
 * keyed by name and label set. Labels must be bounded, safe values (route
 * templates, outcomes), never identifiers, PHI, card data or tokens.
 * `metrics-export.ts` sends the deltas over OTLP/HTTP.
 */
export type Labels = Record<string, string>;

export const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface SumPoint {
  labels: Labels;
  value: number;
}
interface HistPoint {
  labels: Labels;
  count: number;
  sum: number;
  min: number;
  max: number;
  buckets: number[];
}

type Instrument =
  | { kind: "counter" | "updown" | "gauge"; description: string; unit: string; points: Map<string, SumPoint> }
  | { kind: "histogram"; description: string; unit: string; bounds: number[]; points: Map<string, HistPoint> };

const registry = new Map<string, Instrument>();

function labelKey(labels: Labels): string {
  const names = Object.keys(labels);
  if (names.length > 1) names.sort();
  let key = "";
  for (const k of names) key += `${k}=${labels[k]},`;
  return key;
}

function sumInstrument(kind: "counter" | "updown", name: string, description: string, unit: string) {
  let inst = registry.get(name);
  if (!inst) {
    inst = { kind, description, unit, points: new Map() };
    registry.set(name, inst);
  }
  const points = inst.points as Map<string, SumPoint>;
  return {
    add(value: number, labels: Labels = {}): void {
      if (kind === "counter" && value < 0) return;
      const key = labelKey(labels);
      const p = points.get(key);
      if (p) p.value += value;
      else points.set(key, { labels: { ...labels }, value });
    },
  };
}

export function counter(name: string, description = "", unit = "1") {
  return sumInstrument("counter", name, description, unit);
}

export function upDownCounter(name: string, description = "", unit = "1") {
  return sumInstrument("updown", name, description, unit);
}

/**
 * A value observed now (a database's size): each label set keeps the last value set since the previous drain,
 * exported as an OTLP gauge.
 */
export function gauge(name: string, description = "", unit = "1") {
  let inst = registry.get(name);
  if (!inst) {
    inst = { kind: "gauge", description, unit, points: new Map() };
    registry.set(name, inst);
  }
  const points = inst.points as Map<string, SumPoint>;
  return {
    set(value: number, labels: Labels = {}): void {
      const key = labelKey(labels);
      const p = points.get(key);
      if (p) p.value = value;
      else points.set(key, { labels: { ...labels }, value });
    },
  };
}

export function histogram(name: string, description = "", unit = "s", bounds: number[] = DEFAULT_BUCKETS) {
  let inst = registry.get(name);
  if (!inst) {
    inst = { kind: "histogram", description, unit, bounds, points: new Map() };
    registry.set(name, inst);
  }
  const h = inst as Extract<Instrument, { kind: "histogram" }>;
  return {
    record(value: number, labels: Labels = {}): void {
      const key = labelKey(labels);
      let p = h.points.get(key);
      if (!p) {
        p = { labels: { ...labels }, count: 0, sum: 0, min: value, max: value, buckets: new Array<number>(h.bounds.length + 1).fill(0) };
        h.points.set(key, p);
      }
      p.count++;
      p.sum += value;
      p.min = Math.min(p.min, value);
      p.max = Math.max(p.max, value);
      let i = h.bounds.findIndex((b) => value <= b);
      if (i < 0) i = h.bounds.length;
      p.buckets[i] = (p.buckets[i] ?? 0) + 1;
    },
  };
}

export interface MetricSnapshot {
  name: string;
  kind: Instrument["kind"];
  description: string;
  unit: string;
  bounds?: number[];
  points: (SumPoint | HistPoint)[];
}

/** Number of distinct label sets held (the size bound of the export policy). */
export function pointCount(): number {
  let n = 0;
  for (const inst of registry.values()) n += inst.points.size;
  return n;
}

/**
 * Takes every aggregate and resets them: what is returned is the delta since
 * the previous drain (OTLP delta temporality).
 */
export function drain(): MetricSnapshot[] {
  const out = snapshot().filter((m) => m.points.length > 0);
  for (const inst of registry.values()) inst.points.clear();
  return out;
}

/** A copy of every aggregate since the last drain. */
export function snapshot(): MetricSnapshot[] {
  return [...registry.entries()].map(([name, inst]) => ({
    name,
    kind: inst.kind,
    description: inst.description,
    unit: inst.unit,
    ...(inst.kind === "histogram" ? { bounds: inst.bounds } : {}),
    points: [...inst.points.values()].map((p) => structuredClone(p)),
  }));
}
