import { getTableColumns, getTableName, type Column } from "drizzle-orm";
import { CLIENT_WITH_TENANT, type ClientRow } from "./clients";
import { authFailures, clients, tenants } from "./db/schema";
import type { FailureRow } from "./rate-limit";

/**
 * The token path's one D1 round trip (a client secret's lockout windows and client row) as plain
 * prepared statements. Their SQL is written once per isolate from the drizzle schema (constant
 * strings, plain data), and each row is mapped back through its columns' own driver mappings
 * (`disabled` to a boolean, as drizzle does), so a token request builds no query: the query
 * builder was the largest self time of token issuance in the profile. The same statements as
 * `ClientStore.lookup` and `failuresQuery`, which the other paths keep using.
 */
type Mapped = [key: string, column: Column];

// The same columns as ClientStore's query (its tenant's placement and state included), from one definition.
const CLIENT_COLUMNS: Mapped[] = Object.entries(CLIENT_WITH_TENANT);
const FAILURE_COLUMNS: Mapped[] = Object.entries(getTableColumns(authFailures));

const q = (name: string) => `"${name}"`;
const selectList = (cols: Mapped[]) => cols.map(([key, col]) => `${q(getTableName(col.table))}.${q(col.name)} AS ${q(key)}`).join(", ");

const CLIENT_SQL =
  `SELECT ${selectList(CLIENT_COLUMNS)} FROM ${q(getTableName(clients))} ` +
  `LEFT JOIN ${q(getTableName(tenants))} ON ${q(getTableName(tenants))}.${q(tenants.id.name)} = ${q(getTableName(clients))}.${q(clients.tenantId.name)} ` +
  `WHERE ${q(getTableName(clients))}.${q(clients.id.name)} = ?1`;

/** Keys per failures statement: the token path asks for one or two (address, client). */
const failuresSql = (n: number) =>
  `SELECT ${selectList(FAILURE_COLUMNS)} FROM ${q(getTableName(authFailures))} WHERE ${q(authFailures.key.name)} IN (${Array.from({ length: n }, (_, i) => `?${i + 1}`).join(", ")})`;
const FAILURES_SQL = [failuresSql(1), failuresSql(2)];

/**
 * The lockout windows and the client row in one statement (the client-secret path of the token endpoint):
 * one row always, the client's columns (NULL when no such client) beside its windows as a JSON array. One
 * statement instead of two in the batch: each statement is a unit of D1's work and of its result encoding.
 */
const loginSql = (n: number) =>
  `SELECT ${selectList(CLIENT_COLUMNS)}, (SELECT json_group_array(json_object(${FAILURE_COLUMNS.map(([key, col]) => `'${key}', ${q(col.name)}`).join(", ")})) ` +
  `FROM ${q(getTableName(authFailures))} WHERE ${q(authFailures.key.name)} IN (${Array.from({ length: n }, (_, i) => `?${i + 2}`).join(", ")})) AS "__failures" ` +
  `FROM (SELECT 1) AS "__one" LEFT JOIN ${q(getTableName(clients))} ON ${q(getTableName(clients))}.${q(clients.id.name)} = ?1 ` +
  `LEFT JOIN ${q(getTableName(tenants))} ON ${q(getTableName(tenants))}.${q(tenants.id.name)} = ${q(getTableName(clients))}.${q(clients.tenantId.name)}`;
const LOGIN_SQL = [loginSql(1), loginSql(2)];

function mapRow<T>(cols: Mapped[], raw: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const [key, col] of cols) {
    const v = raw[key];
    out[key] = v === null || v === undefined ? null : col.mapFromDriverValue(v);
  }
  return out as T;
}

export function failuresStatement(db: D1Database, keys: string[]): D1PreparedStatement {
  const sql = FAILURES_SQL[keys.length - 1] ?? failuresSql(keys.length);
  return db.prepare(sql).bind(...keys);
}

export function clientStatement(db: D1Database, id: string): D1PreparedStatement {
  return db.prepare(CLIENT_SQL).bind(id);
}

export const failureRows = (res: D1Result | undefined): FailureRow[] =>
  (res?.results ?? []).map((r) => mapRow<FailureRow>(FAILURE_COLUMNS, r as Record<string, unknown>));

export function clientRow(res: D1Result | undefined): ClientRow | undefined {
  const raw = res?.results[0] as Record<string, unknown> | undefined;
  return raw ? mapRow<ClientRow>(CLIENT_COLUMNS, raw) : undefined;
}

/** The client's lockout windows (`keys`) and its row, for one D1 statement: see `loginRows`. */
export function loginStatement(db: D1Database, clientId: string, keys: string[]): D1PreparedStatement {
  const sql = LOGIN_SQL[keys.length - 1] ?? loginSql(keys.length);
  return db.prepare(sql).bind(clientId, ...keys);
}

/** `loginStatement`'s answer as the same rows `failuresStatement` and `clientStatement` give. */
export function loginRows(res: D1Result | undefined): { failures: FailureRow[]; row: ClientRow | undefined } {
  const raw = res?.results[0] as Record<string, unknown> | undefined;
  if (!raw) return { failures: [], row: undefined };
  const windows = JSON.parse(typeof raw.__failures === "string" ? raw.__failures : "[]") as Record<string, unknown>[];
  return {
    failures: windows.map((w) => mapRow<FailureRow>(FAILURE_COLUMNS, w)),
    row: raw.id === null || raw.id === undefined ? undefined : mapRow<ClientRow>(CLIENT_COLUMNS, raw),
  };
}
