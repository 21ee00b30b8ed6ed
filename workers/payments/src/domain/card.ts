/**
 * Card number checks, pure (PCI-DSS scope: these see the number; they never log
 * or return it, only a tagged result).
 */
export type Brand = "visa" | "mastercard" | "amex" | "discover" | "jcb" | "diners";

export type CardCheck =
  | { ok: true; number: string; brand: Brand; last4: string }
  | { ok: false; code: "invalid_number" | "unsupported_brand" | "invalid_expiry" | "invalid_cvc" };

/** ISO/IEC 7812-1 Annex B (Luhn mod 10). */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

interface BrandRule {
  brand: Brand;
  test: (d: string) => boolean;
  lengths: readonly number[];
}

const inRange = (d: string, len: number, lo: number, hi: number) => {
  const p = Number(d.slice(0, len));
  return p >= lo && p <= hi;
};

/** Issuer identification ranges (brand rules as published by the networks). */
const BRANDS: readonly BrandRule[] = [
  { brand: "amex", test: (d) => /^3[47]/.test(d), lengths: [15] },
  { brand: "diners", test: (d) => /^3(0[0-5]|[689])/.test(d), lengths: [14, 16, 17, 18, 19] },
  { brand: "jcb", test: (d) => inRange(d, 4, 3528, 3589), lengths: [16, 17, 18, 19] },
  { brand: "visa", test: (d) => d.startsWith("4"), lengths: [13, 16, 19] },
  { brand: "mastercard", test: (d) => inRange(d, 2, 51, 55) || inRange(d, 4, 2221, 2720), lengths: [16] },
  {
    brand: "discover",
    test: (d) => d.startsWith("6011") || d.startsWith("65") || inRange(d, 3, 644, 649) || inRange(d, 6, 622126, 622925),
    lengths: [16, 17, 18, 19],
  },
];

export function brandOf(digits: string): Brand | undefined {
  const rule = BRANDS.find((b) => b.test(digits));
  return rule && rule.lengths.includes(digits.length) ? rule.brand : undefined;
}

/** Spaces are allowed as typed on the card; anything else but digits is refused. */
export function normalizeNumber(raw: string): string | undefined {
  const digits = raw.replace(/ /g, "");
  return /^\d{13,19}$/.test(digits) ? digits : undefined;
}

/** A card is valid through the last day of its expiry month (UTC). */
export function expired(expMonth: number, expYear: number, now: Date): boolean {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth() + 1;
  return expYear < y || (expYear === y && expMonth < m);
}

export function checkCard(
  input: { number: string; expMonth: number; expYear: number; cvc?: string | undefined },
  now: Date,
): CardCheck {
  const number = normalizeNumber(input.number);
  if (!number || !luhnValid(number)) return { ok: false, code: "invalid_number" };
  const brand = brandOf(number);
  if (!brand) return { ok: false, code: "unsupported_brand" };
  if (expired(input.expMonth, input.expYear, now) || input.expYear > now.getUTCFullYear() + 20) {
    return { ok: false, code: "invalid_expiry" };
  }
  if (input.cvc !== undefined && !new RegExp(brand === "amex" ? "^\\d{4}$" : "^\\d{3}$").test(input.cvc)) {
    return { ok: false, code: "invalid_cvc" };
  }
  return { ok: true, number, brand, last4: number.slice(-4) };
}

/** Digits joined by anything but letters and digits: spaces, dashes, dots, slashes, punctuation, symbols. */
const DIGIT_RUN = /\d(?:[^\p{L}\p{N}]*\d)*/gu;
/** The typed form of a card number: digits joined by single spaces or dashes. */
const TYPED_RUN = /\d(?:[ -]?\d)*/g;

/**
 * True when free text holds something that looks like a card number. Free-text fields refuse it so a PAN never
 * lands in plaintext columns (PCI-DSS 3.4.1). Two rules, either suffices:
 * - a number as typed on a card (digits joined by single spaces or dashes) of 13-19 digits passing Luhn, of any
 *   brand (so numbers of networks we do not process are refused too);
 * - inside any run of digits joined by non-alphanumeric characters (`4242.4242.4242.4242`, `4242 / 4242 ...`),
 *   any window of 13-19 consecutive digits passing Luhn that is a known brand at a length that brand issues
 *   (`brandOf`): this finds a number with digits around it (`order 7 4242424242424242`,
 *   `4242 4242 4242 4242 2 items`). The brand is required here because a run of n digits holds up to 7(n-15)
 *   windows, each passing Luhn one time in ten: without it most 16-digit references, and nearly every timestamp
 *   with milliseconds, would be refused. With it, a stray window must also start with an issuer's prefix and have
 *   its length, as card-number scanners (DLP) require.
 * Text is NFKC-normalized first, so full-width or styled digits count as digits.
 */
export function containsPan(text: string): boolean {
  const normalized = text.normalize("NFKC");
  for (const m of normalized.matchAll(TYPED_RUN)) {
    const digits = m[0].replace(/[ -]/g, "");
    if (digits.length >= 13 && digits.length <= 19 && luhnValid(digits)) return true;
  }
  for (const m of normalized.matchAll(DIGIT_RUN)) {
    const digits = m[0].replace(/\D/g, "");
    for (let start = 0; start + 13 <= digits.length; start++) {
      for (let len = 13; len <= 19 && start + len <= digits.length; len++) {
        const window = digits.slice(start, start + len);
        if (brandOf(window) && luhnValid(window)) return true;
      }
    }
  }
  return false;
}
