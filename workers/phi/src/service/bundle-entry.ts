import { scopeOf, type Scope } from "../store/scope";
import type { PhiEnv } from "../env";
import type { Context } from "hono";
import { ApiError } from "../../../../shared/errors";
import { decideReadable, decideVersionMatch, type Decision } from "../access";
import type { AuditAction } from "../audit/describe";
import { safeId } from "../audit/describe";
import type { PhiSettings } from "../config";
import { indexEntries, observationValues, patientValues } from "../fhir/index-tokens";
import type { ResourceType } from "../fhir/search-params";
import { compactVersionStatements } from "../store/bundle-statements";
import { headStatement, type VersionRow } from "../store/resources";
import { entryError, targetKey, type PlannedEntry, type ValidResource } from "./bundle-plan";
import { conditionalCriteria, conditionalMatches } from "./conditional";
import { noLiveMatch, type Sql } from "../store/search-query";
import type { TokenCondition } from "../fhir/index-tokens";
import { presentVersion, type FhirResource } from "./present";
import { sealedVersion, type NewVersion } from "./write";

/**
 * Reading what a Bundle's entries depend on (one wave of D1 calls) and deciding each
 * entry against it: the checks of the single-resource routes (404/410, If-Match 412,
 * a live subject 422, conditional create 200/412), producing the entry's statements,
 * its audit event and its answer. Nothing is written here.
 */
export interface BundleState {
  /** Current version by `Type/id` (null: no such resource), as read, then as this transaction leaves it. */
  rows: Map<string, VersionRow | null>;
  /** Resources this transaction wrote, to answer a later GET of them without a read. */
  written: Map<string, FhirResource | null>;
  /** Conditional create matches by entry index. */
  matches: Map<number, VersionRow[]>;
  /** Conditional creates' criteria (blind-index conditions) by entry index: the guard of the create when none matched. */
  criteria: Map<number, TokenCondition[]>;
}

export interface EntryResult {
  index: number;
  status: number;
  statements: D1PreparedStatement[];
  audit: { action: AuditAction; resourceType: ResourceType; resourceId: string; patientIds: string[] };
  row: VersionRow;
  resource: FhirResource | null;
  /** A write (Prefer return applies) rather than a read. */
  write: boolean;
}

/**
 * One wave: the current version of every resource the entries read, change or refer to
 * (one D1 batch) alongside each conditional create's match query, all at once. A
 * conditional criteria error is that entry's error (in `failed`).
 */
export async function readState(
  c: Context<PhiEnv>,
  cfg: PhiSettings,
  entries: readonly { p: PlannedEntry; resource?: ValidResource }[],
  failed: Map<number, ApiError>,
): Promise<BundleState> {
  const scope = scopeOf(c);
  const created = new Set(entries.filter((e) => e.p.method === "POST").map((e) => targetKey(e.p)));
  const keys = new Set<string>();
  for (const { p, resource } of entries) {
    if (p.method !== "POST") keys.add(targetKey(p));
    if (resource?.type === "Observation" && !created.has(`Patient/${resource.subject}`)) keys.add(`Patient/${resource.subject}`);
  }
  const list = [...keys].map((k) => k.split("/") as [ResourceType, string]);
  const conditional = entries.filter((e) => e.p.ifNoneExist !== undefined);
  const criteria = new Map<number, TokenCondition[]>();
  const [heads, ...matched] = await Promise.all([
    list.length > 0 ? scope.db.batch(list.map(([type, id]) => headStatement(scope, type, id))) : Promise.resolve([]),
    ...conditional.map(({ p }) =>
      conditionalCriteria(cfg, p.ifNoneExist ?? "")
        .then((conds) => {
          criteria.set(p.index, conds);
          return conditionalMatches(scope, cfg, p.ifNoneExist ?? "", conds);
        })
        .catch((err: unknown) => {
          if (!(err instanceof ApiError)) throw err;
          failed.set(p.index, entryError(p.index, err.status, err.code, err.detail ?? err.code));
          return [];
        }),
    ),
  ]);
  const rows = new Map<string, VersionRow | null>();
  list.forEach(([type, id], i) => rows.set(`${type}/${id}`, (heads[i]?.results[0] as VersionRow | undefined) ?? null));
  const matches = new Map<number, VersionRow[]>();
  conditional.forEach(({ p }, i) => {
    const found = matched[i] ?? [];
    matches.set(p.index, found);
    for (const r of found) rows.set(targetKey({ type: r.resource_type, id: r.id }), r);
  });
  return { rows, written: new Map(), matches, criteria };
}

function refuse(p: PlannedEntry, d: Decision): void {
  if (!d.ok) throw entryError(p.index, d.status, d.code, d.detail);
}

async function buildVersion(scope: Scope, cfg: PhiSettings, v: NewVersion, now: Date, guard?: Sql) {
  const { row, resource } = await sealedVersion(cfg, v, now);
  return { row, resource, statements: compactVersionStatements(scope, row, await indexEntries(cfg.indexKey, v.type, v.values), guard) };
}

/**
 * Decides one entry against `state` (throws its ApiError). With `apply` (a transaction)
 * the state then holds what the entry wrote, so later entries see it; a batch's entries
 * each see the state as read.
 */
export async function decideEntry(
  c: Context<PhiEnv>,
  cfg: PhiSettings,
  p: PlannedEntry,
  resource: ValidResource | undefined,
  state: BundleState,
  now: Date,
  apply: boolean,
): Promise<EntryResult> {
  const key = targetKey(p);
  const head = state.rows.get(key) ?? null;
  const result = async (status: number, action: AuditAction, v: NewVersion, guard?: Sql): Promise<EntryResult> => {
    const built = await buildVersion(scopeOf(c), cfg, v, now, guard);
    if (apply) {
      state.rows.set(key, built.row);
      state.written.set(key, built.resource);
    }
    const audit = { action, resourceType: p.type, resourceId: p.id, patientIds: [v.patientId] };
    return { index: p.index, status, statements: built.statements, audit, row: built.row, resource: built.resource, write: true };
  };
  const read = async (status: number, row: VersionRow, write: boolean): Promise<EntryResult> => {
    const resource = state.written.get(key) ?? (await presentVersion(cfg.bodies, row));
    const audit = { action: "read" as const, resourceType: p.type, resourceId: safeId(row.id), patientIds: [row.patient_id] };
    return { index: p.index, status, statements: [], audit, row, resource, write };
  };
  switch (p.method) {
    case "POST": {
      const found = state.matches.get(p.index) ?? [];
      if (found.length > 1) throw entryError(p.index, 412, "multiple_matches", "The ifNoneExist criteria match more than one Patient.");
      const match = found[0];
      // FHIR R4 http.html#ccreate: the one existing match is the answer, nothing is created.
      if (match) return read(200, match, true);
      if (resource?.type === "Patient") {
        // A conditional create that found none is written only while none matches at commit (concurrent creates).
        const conds = state.criteria.get(p.index);
        const guard = conds ? noLiveMatch(scopeOf(c).tenant, "Patient", conds) : undefined;
        return result(201, "create", { type: "Patient", id: p.id, versionId: 1, patientId: p.id, body: resource.body, values: patientValues(resource.body, p.id) }, guard);
      }
      if (resource?.type !== "Observation") throw new ApiError(500, "internal_error");
      const subject = state.rows.get(`Patient/${resource.subject}`);
      if (!subject || subject.deleted) throw entryError(p.index, 422, "unknown_subject", "The subject is not a Patient of this server.");
      const values = observationValues(resource.body, p.id);
      return result(201, "create", { type: "Observation", id: p.id, versionId: 1, patientId: resource.subject, body: resource.body, values });
    }
    case "PUT": {
      refuse(p, decideReadable(head));
      if (!head || resource?.type !== "Patient") throw entryError(p.index, 404, "not_found", "No resource has this id.");
      refuse(p, decideVersionMatch(p.ifMatch, head));
      return result(200, "update", { type: "Patient", id: p.id, versionId: head.version_id + 1, patientId: p.id, body: resource.body, values: patientValues(resource.body, p.id) });
    }
    case "DELETE": {
      refuse(p, decideReadable(head));
      if (!head) throw entryError(p.index, 404, "not_found", "No resource has this id.");
      refuse(p, decideVersionMatch(p.ifMatch, head));
      return result(204, "delete", { type: p.type, id: p.id, versionId: head.version_id + 1, patientId: head.patient_id, body: null, values: [] });
    }
    case "GET": {
      refuse(p, decideReadable(head));
      if (!head) throw entryError(p.index, 404, "not_found", "No resource has this id.");
      return read(200, head, false);
    }
  }
}
