import type { Randomizer } from "@faker-js/faker";

/**
 * Deterministic randomness. Every stream is seeded from a 128-bit hash of
 * (seed, patient index, stream name), so patient N needs nothing generated
 * before it (random access) and one part of a patient (its vitals, say) never
 * shifts another (its name) when the code that consumes it changes.
 */
export type Words = readonly [number, number, number, number];

/**
 * cyrb128 (bryc, public domain): a fast 128-bit non-cryptographic string hash
 * with full avalanche. Nothing here is a secret, so speed wins over a MAC.
 */
export function hash128(input: string): Words {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < input.length; i++) {
    const k = input.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044597);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044597);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/** The key of one stream: unit separators keep ("a", 12) and ("a1", 2) apart. */
export function streamWords(seed: string, index: number, stream: string): Words {
  return hash128(`${seed}\u001f${index}\u001f${stream}`);
}

/** An RFC 9562 version 8 (custom) UUID made from 128 hash bits: stable ids without a clock. */
export function uuidFromWords(w: Words): string {
  const hex = w.map((x) => x.toString(16).padStart(8, "0")).join("");
  const version = "8" + hex.slice(13, 16);
  const variant = ((parseInt(hex.slice(16, 17), 16) & 0x3) | 0x8).toString(16) + hex.slice(17, 20);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${version}-${variant}-${hex.slice(20, 32)}`;
}

/**
 * sfc32 (Chris Doty-Humphrey's Small Fast Chaotic PRNG, PractRand-clean):
 * a 128-bit state, a few integer ops per draw. Also serves as faker's
 * randomizer, so faker's output is a function of our seed alone.
 */
export class Rng implements Randomizer {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  constructor(words: Words = [0, 0, 0, 1]) {
    this.reseed(words);
  }

  reseed(w: Words): void {
    [this.a, this.b, this.c, this.d] = w;
    // Warm-up: the first outputs of sfc32 still resemble the seed words.
    for (let i = 0; i < 12; i++) this.next32();
  }

  /** Faker's interface; we always seed through `reseed`, this accepts faker's own calls. */
  seed(seed: number | number[]): void {
    const s = Array.isArray(seed) ? seed : [seed];
    this.reseed(hash128(s.join(",")));
  }

  next32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1) with 53 bits of precision. */
  next(): number {
    const hi = this.next32() >>> 5;
    const lo = this.next32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** An integer in [min, max], both inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new RangeError("pick from an empty list");
    return item;
  }

  /** Standard normal draw (Box-Muller); `1 - next()` keeps the log argument in (0, 1]. */
  normal(mean = 0, sd = 1): number {
    const u = 1 - this.next();
    const v = this.next();
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** A normal draw kept inside [min, max]. */
  clampedNormal(mean: number, sd: number, min: number, max: number): number {
    return Math.min(max, Math.max(min, this.normal(mean, sd)));
  }
}
