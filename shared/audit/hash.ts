import { sha256Hex } from "../crypto";
import { DEFAULT_TENANT_ID } from "../tenants";

/**
 * The hash chain's arithmetic. A sealed record's `hash` is
 * SHA-256(prev_hash "\n" canonical JSON of {seq, ...data columns}); `prev_hash` is
 * the hash of the sealed record before it in seq order (GENESIS for the first).
 * A column of LATE_COLUMNS holding its old default is left out (below).
 * The seal columns (`prev_hash`, `hash`, `sealed_at`) are not hashed: records
 * written before sealing moved off the request path hash the same way, so they
 * still verify.
 */
export const GENESIS_HASH = "0".repeat(64);

/** Columns the sealer sets once (NULL -> value); every other column is data. */
export const SEAL_COLUMNS = ["seq", "prev_hash", "hash", "sealed_at"] as const;

export type ChainValue = string | number | null;
export type ChainColumns = Record<string, ChainValue>;

/**
 * Data columns added to a chain after records were sealed, with the value their
 * migration gave the older records (the column default). A record holding exactly
 * that value hashes without the column, so the records sealed before it existed
 * still verify; any other value is hashed. Either way the column is bound: moving
 * a record into or out of that value changes what its hash covers.
 * `tenant_id` (issue 18): the records written before tenants are the default tenant's.
 * `origin` (phi, tenant moves): NULL on every record written where it is; a moved copy hashes its first home.
 */
export const LATE_COLUMNS: Readonly<Record<string, ChainValue>> = { tenant_id: DEFAULT_TENANT_ID, origin: null };

const IDENT = /^[a-z_][a-z0-9_]*$/;
/** Names that passed (plain strings; the same few dozen column names on every request). */
const checked = new Set<string>();

/** Table and column names are interpolated into SQL: only plain identifiers pass. */
export function ident(name: string): string {
  if (checked.has(name)) return name;
  if (!IDENT.test(name)) throw new Error(`unsafe SQL identifier: ${name}`);
  if (checked.size < 1024) checked.add(name);
  return name;
}

/** A key a JS object orders before the others whatever the insertion order (an array index). */
const INDEX_LIKE = /^(?:0|[1-9]\d*)$/;

/**
 * JSON with sorted keys, so the hash does not depend on property order. One JSON.stringify of the row rebuilt in
 * key order gives exactly the text of stringifying key and value pair by pair (null for a missing value), at half
 * the cost; a row with an index-like key, which an object would move to the front, takes the pair-by-pair way.
 */
export function canonicalJson(row: ChainColumns): string {
  const keys = Object.keys(row).sort();
  if (keys.some((k) => INDEX_LIKE.test(k))) return "{" + keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(row[k] ?? null)}`).join(",") + "}";
  const sorted: ChainColumns = Object.create(null) as ChainColumns;
  for (const k of keys) sorted[k] = row[k] ?? null;
  return JSON.stringify(sorted);
}

export function chainHash(prevHash: string, seq: number, columns: ChainColumns): Promise<string> {
  return sha256Hex(`${prevHash}\n${canonicalJson({ ...columns, seq })}`);
}

/** A stored row split into its seal columns and the data the hash covers. */
export function splitRow(row: Record<string, ChainValue>): {
  seq: number;
  prevHash: string | null;
  hash: string | null;
  data: ChainColumns;
} {
  const { seq, prev_hash, hash } = row;
  // Built key by key (no `delete`, which would slow every later read of the object); no prototype, so any
  // column name is an own key, as with a rest copy.
  const data: ChainColumns = Object.create(null) as ChainColumns;
  for (const name of Object.keys(row)) {
    if (name === "seq" || name === "prev_hash" || name === "hash" || name === "sealed_at") continue;
    const value = row[name];
    if (Object.hasOwn(LATE_COLUMNS, name) && value === LATE_COLUMNS[name]) continue;
    data[name] = value as ChainValue;
  }
  return {
    seq: Number(seq),
    prevHash: typeof prev_hash === "string" ? prev_hash : null,
    hash: typeof hash === "string" ? hash : null,
    data,
  };
}
