import { isConditionalConflict } from "../store/bundle-statements";
import { scopeOf } from "../store/scope";
import type { PhiEnv } from "../env";
import type { Context } from "hono";
import { ApiError } from "../../../../shared/errors";
import { entriesRecorded, entryRecord } from "../audit/entries";
import { auditState } from "../audit/middleware";
import type { AuditEvent } from "../audit/trail";
import type { PhiSettings } from "../config";
import { processingRank, type BundleEntryInput } from "../fhir/bundle";
import type { ReturnPreference } from "../fhir/prefer";
import { readHead } from "../store/resources";
import { decideEntry, readState, type EntryResult } from "./bundle-entry";
import { placeholderMap, planEntry, refuseDuplicateTargets, resolveResource, targetKey, type PlannedEntry, type ValidResource } from "./bundle-plan";
import { responseBundle, successEntry, type ResponseBundle } from "./bundle-response";

/**
 * A FHIR transaction (R4 http.html#transaction): every entry or none. D1 round trips:
 * at most one wave of reads (the current versions the entries need, and each
 * conditional create's match query, concurrently), then ONE batch holding every
 * entry's data and one audit record per entry; a transaction of plain creates is that
 * one batch alone. Any entry failing refuses the whole transaction with that entry's
 * status (its OperationOutcome names `Bundle.entry[i]`) before anything is written.
 */
function resolveAll(planned: readonly PlannedEntry[]): { p: PlannedEntry; resource?: ValidResource }[] {
  const map = placeholderMap(planned);
  return planned.map((p) => {
    const resource = resolveResource(p, map);
    return resource ? { p, resource } : { p };
  });
}

export async function runTransaction(
  c: Context<PhiEnv>,
  cfg: PhiSettings,
  input: readonly BundleEntryInput[],
  base: string,
  pref: ReturnPreference | undefined,
  now: Date,
): Promise<ResponseBundle> {
  let planned = input.map((e, i) => planEntry(i, e, base));
  const duplicate = [...refuseDuplicateTargets(planned).values()][0];
  if (duplicate) throw duplicate;
  let entries = resolveAll(planned);
  // A refused transaction's record names the existing patients it concerned (not the ids its creates would have had).
  const creates = new Set(planned.filter((p) => p.method === "POST").map((p) => p.id));
  const concerned = entries.flatMap(({ p, resource }) => (resource?.type === "Observation" ? [resource.subject] : p.type === "Patient" ? [p.id] : []));
  auditState(c).patients = [...new Set(concerned.filter((id) => !creates.has(id)))];
  const failed = new Map<number, ApiError>();
  const state = await readState(c, cfg, entries, failed);
  const conditionFailure = [...failed.values()][0];
  if (conditionFailure) throw conditionFailure;
  // FHIR processes a transaction's DELETEs before its POSTs (R4 http.html#trules), so a conditional create is
  // evaluated after them: a Patient this transaction deletes no longer matches. Left in, the create would answer
  // 200 with that Patient's old content (and placeholders would name it) while the same commit tombstones it.
  // Without it the entry is judged on the other matches: none is the guarded create (the guard runs after the
  // DELETE's statements in the one batch, which removed the deleted Patient's index rows), several a 412.
  const deleting = new Set(planned.filter((p) => p.method === "DELETE").map(targetKey));
  for (const [i, found] of state.matches) state.matches.set(i, found.filter((r) => !deleting.has(targetKey({ type: r.resource_type, id: r.id }))));
  // A conditional create that matched takes the match's id: references to its fullUrl now name it.
  if ([...state.matches.values()].some((m) => m.length === 1)) {
    planned = planned.map((p) => {
      const match = state.matches.get(p.index);
      return match?.length === 1 && match[0] ? { ...p, id: match[0].id } : p;
    });
    entries = resolveAll(planned);
  }
  // FHIR processing order: DELETE, POST, PUT, GET (a stable sort keeps the Bundle's order within each).
  // Among creates, Patients first: an Observation may name a Patient created later in the Bundle.
  const rank = (p: PlannedEntry) => processingRank(p.method) * 2 + (p.method === "POST" && p.type === "Observation" ? 1 : 0);
  const ordered = [...entries].sort((a, b) => rank(a.p) - rank(b.p));
  const results: EntryResult[] = [];
  for (const { p, resource } of ordered) results.push(await decideEntry(c, cfg, p, resource, state, now, true));

  const events: AuditEvent[] = results.map((r) => ({ ...r.audit, outcome: "success", reason: "" }));
  if (results.length > 0) {
    try {
      await scopeOf(c).db.batch([...results.flatMap((r) => r.statements), ...events.map((ev) => entryRecord(c, ev, now))]);
    } catch (err) {
      throw await explainFailure(c, results, err);
    }
  }
  entriesRecorded(c, events);
  const byIndex = new Map(results.map((r) => [r.index, r]));
  const answers = input.map((_, i) => {
    const r = byIndex.get(i);
    if (!r) throw new ApiError(500, "internal_error");
    return successEntry(base, r, pref);
  });
  return responseBundle("transaction-response", answers, now);
}

/**
 * The batch failed as a whole (nothing was written). When another writer took a version
 * this transaction meant to write, or created a Patient a conditional create of it now
 * matches, say so (409, as for a single update); otherwise the store's error goes to the
 * one error path (503).
 */
async function explainFailure(c: Context<PhiEnv>, results: readonly EntryResult[], err: unknown): Promise<unknown> {
  if (isConditionalConflict(err)) {
    return new ApiError(409, "conditional_create_conflict", "A Patient matching an entry's ifNoneExist was created at the same time; send the Bundle again (it will match).");
  }
  const updates = results.filter((r) => r.statements.length > 0 && r.row.version_id > 1);
  const heads = await Promise.all(updates.map((r) => readHead(scopeOf(c), r.row.resource_type, r.row.id).catch(() => null)));
  const lost = updates.findIndex((r, i) => (heads[i]?.version_id ?? 0) >= r.row.version_id);
  if (lost >= 0) {
    return new ApiError(409, "version_conflict", `Entry ${updates[lost]?.index ?? 0}: another update of this resource happened at the same time; read it again.`);
  }
  return err;
}
