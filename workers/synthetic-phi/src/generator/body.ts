import type { Rng } from "./random";
import type { Sex } from "./identity";

/**
 * Age, sex and body measurements of one patient: the facts vitals and conditions
 * must agree with. Pediatric medians approximate the CDC 2000 growth charts
 * (50th percentile); adult heights and BMI follow NHANES-like distributions.
 */
export interface Body {
  sex: Sex;
  /** Age in days at the reference date. */
  ageDays: number;
  /** Height (cm) and weight (kg) as emitted (rounded to 0.1). */
  heightCm: number;
  weightKg: number;
  /** Computed from the rounded height and weight, rounded to 0.1: consistent by construction. */
  bmi: number;
}

//                      0     1     2     3     4      5      6      7      8      9     10     11     12     13     14     15     16     17     18
const HEIGHT = {
  male: [50, 76, 88, 96, 103, 110, 116, 122, 128, 133, 138, 143, 149, 156, 164, 170, 173, 175, 176],
  female: [49, 74, 86, 95, 102, 109, 115, 121, 127, 133, 138, 144, 151, 157, 160, 162, 162, 163, 163],
};
const WEIGHT = {
  male: [3.5, 10.2, 12.7, 14.3, 16.3, 18.4, 20.7, 23, 25.6, 28.6, 32, 35.6, 40, 45.3, 50.8, 56, 60.8, 64.4, 67],
  female: [3.4, 9.5, 12.1, 13.9, 15.9, 18, 20.3, 22.9, 25.8, 29, 32.6, 36.9, 41.5, 45.8, 49.4, 52, 53.5, 54.4, 56],
};

/** Linear interpolation of a per-year table at a fractional age. */
export function atAge(table: readonly number[], years: number): number {
  const i = Math.max(0, Math.min(table.length - 1, Math.floor(years)));
  const lo = table[i] ?? 0;
  const hi = table[Math.min(i + 1, table.length - 1)] ?? lo;
  return lo + (hi - lo) * Math.min(1, Math.max(0, years - i));
}

export const round1 = (x: number) => Math.round(x * 10) / 10;

/** Age bands weighted roughly like the US population (Census 2020): 22 % minors, 17 % 65+. */
export function drawAgeDays(r: Rng): number {
  const u = r.next();
  const [lo, hi] = u < 0.22 ? [0, 18] : u < 0.58 ? [18, 45] : u < 0.83 ? [45, 65] : [65, 95];
  return Math.floor((lo + r.next() * (hi - lo)) * 365.2425);
}

export function drawBody(r: Rng): Body {
  const sex: Sex = r.chance(0.5) ? "female" : "male";
  const ageDays = drawAgeDays(r);
  const years = ageDays / 365.2425;
  let height: number;
  let weight: number;
  if (years < 18) {
    height = atAge(HEIGHT[sex], years) * r.clampedNormal(1, 0.04, 0.88, 1.12);
    weight = atAge(WEIGHT[sex], years) * r.clampedNormal(1, 0.12, 0.7, 1.5);
  } else {
    // Adults lose about 1 cm per decade after 60.
    const shrink = Math.max(0, years - 60) * 0.1;
    height = (sex === "male" ? r.clampedNormal(176, 7, 155, 200) : r.clampedNormal(162.5, 6.5, 142, 185)) - shrink;
    const bmi = r.clampedNormal(sex === "male" ? 27.8 : 27.2, 5, 17, 48);
    weight = bmi * (height / 100) ** 2;
  }
  const heightCm = round1(height);
  const weightKg = round1(weight);
  return { sex, ageDays, heightCm, weightKg, bmi: bmiOf(weightKg, heightCm) };
}

export function bmiOf(weightKg: number, heightCm: number): number {
  return round1(weightKg / (heightCm / 100) ** 2);
}
