import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { auditInsert, commitWithRecord, sqlValue } from "../../../shared/audit/append";
import { canonicalJson, chainHash, GENESIS_HASH, LATE_COLUMNS, splitRow, type ChainColumns, type ChainValue } from "../../../shared/audit/hash";
import { listAudit } from "../../../shared/audit/list";
import { latestCheckpoint, sealPending, type ChainSpec } from "../../../shared/audit/seal";
import { D1_DATABASE_LIMIT_BYTES, D1_SIZE_WARN_RATIO, reportDatabaseSize } from "../../../shared/audit/sealer";
import { verifyChain } from "../../../shared/audit/verify";
import { drain, snapshot } from "../../../shared/metrics";
import { jsonLines } from "../../../shared/testing/log-lines";

/**
 * The shared audit module on a real D1 table shaped like the three trails (same
 * columns, same triggers as the *_audit_protect migrations). The Durable Object
 * sealers are tested in phi, payments and devices, which bind them.
 */
async function makeChain(name: string): Promise<ChainSpec> {
  const cp = `${name}_checkpoints`;
  await env.DB.exec(
    `CREATE TABLE IF NOT EXISTS ${name} (seq INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, prev_hash TEXT, hash TEXT, sealed_at TEXT, actor TEXT NOT NULL, outcome TEXT NOT NULL, n INTEGER)`,
  );
  await env.DB.exec(
    `CREATE TABLE IF NOT EXISTS ${cp} (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, sealed_up_to INTEGER NOT NULL, head_hash TEXT NOT NULL, sealed_count INTEGER NOT NULL, batch INTEGER NOT NULL, at TEXT NOT NULL)`,
  );
  const guards = [
    `CREATE TRIGGER IF NOT EXISTS ${name}_no_delete BEFORE DELETE ON ${name} BEGIN SELECT RAISE(ABORT, 'append-only'); END`,
    `CREATE TRIGGER IF NOT EXISTS ${name}_insert_pending BEFORE INSERT ON ${name} WHEN NEW.prev_hash IS NOT NULL OR NEW.hash IS NOT NULL OR NEW.sealed_at IS NOT NULL BEGIN SELECT RAISE(ABORT, 'unsealed'); END`,
    `CREATE TRIGGER IF NOT EXISTS ${name}_seal_once BEFORE UPDATE ON ${name} WHEN OLD.prev_hash IS NOT NULL OR OLD.hash IS NOT NULL OR OLD.sealed_at IS NOT NULL OR NEW.prev_hash IS NULL OR NEW.hash IS NULL OR NEW.sealed_at IS NULL OR NEW.seq IS NOT OLD.seq OR NEW.actor IS NOT OLD.actor OR NEW.outcome IS NOT OLD.outcome OR NEW.n IS NOT OLD.n BEGIN SELECT RAISE(ABORT, 'seal once'); END`,
  ];
  for (const g of guards) await env.DB.prepare(g).run();
  return { table: name, checkpoints: cp };
}

/** What an attacker with raw access to the database does first: drop the guards. */
async function dropGuards(name: string): Promise<void> {
  for (const t of ["no_delete", "insert_pending", "seal_once"]) await env.DB.prepare(`DROP TRIGGER IF EXISTS ${name}_${t}`).run();
}

const append = (chain: ChainSpec, actor: string, n: number, statements: D1PreparedStatement[] = []) =>
  commitWithRecord(env.DB, chain.table, statements, auditInsert(env.DB, chain.table, { actor, outcome: "success", n }));

describe("audit append: one insert in the data's batch", () => {
  it("appends 40 concurrent records with no read, no retry and no gap; each with its data, pending until sealed", async () => {
    const chain = await makeChain("t_append");
    await env.DB.exec("CREATE TABLE IF NOT EXISTS t_append_data (id INTEGER PRIMARY KEY)");
    await Promise.all(Array.from({ length: 40 }, (_, i) => append(chain, `a${i}`, i, [env.DB.prepare("INSERT INTO t_append_data (id) VALUES (?)").bind(i)])));
    const rows = await env.DB.prepare("SELECT seq, hash, actor FROM t_append ORDER BY seq").all<{ seq: number; hash: string | null; actor: string }>();
    expect(rows.results.map((r) => r.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(rows.results.every((r) => r.hash === null)).toBe(true);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM t_append_data").first("n")).toBe(40);
    expect(await verifyChain(env.DB, chain)).toMatchObject({ ok: true, records: 0, sealed: 0, pending: 40, complete: true, checkpoint: null });
  });

  it("lets SQL decide a column from the same batch's data (the true outcome, no extra round trip)", async () => {
    const chain = await makeChain("t_decide");
    await env.DB.exec("CREATE TABLE IF NOT EXISTS t_decide_data (id TEXT PRIMARY KEY, deleted INTEGER NOT NULL)");
    await env.DB.prepare("INSERT INTO t_decide_data VALUES ('live', 0), ('dead', 1)").run();
    const outcome = (id: string) =>
      sqlValue("SELECT CASE (SELECT deleted FROM t_decide_data WHERE id = ?) WHEN 0 THEN 'success' WHEN 1 THEN 'gone' ELSE 'not_found' END", id);
    for (const id of ["live", "dead", "nobody"]) {
      const [read] = await commitWithRecord(env.DB, chain.table, [env.DB.prepare("SELECT * FROM t_decide_data WHERE id = ?").bind(id)], auditInsert(env.DB, chain.table, { actor: id, outcome: outcome(id), n: null }));
      expect(read?.results.length).toBe(id === "nobody" ? 0 : 1);
    }
    const got = await env.DB.prepare("SELECT actor, outcome FROM t_decide ORDER BY seq").all();
    expect(got.results).toEqual([
      { actor: "live", outcome: "success" },
      { actor: "dead", outcome: "gone" },
      { actor: "nobody", outcome: "not_found" },
    ]);
  });

  it("fails closed: a record that cannot be written rolls its data back (503 alone, the store's error with data)", async () => {
    await env.DB.exec("CREATE TABLE IF NOT EXISTS t_closed_data (id INTEGER PRIMARY KEY)");
    const insert = auditInsert(env.DB, "no_such_audit", { actor: "x", outcome: "success", n: 1 });
    await expect(commitWithRecord(env.DB, "no_such_audit", [], insert)).rejects.toMatchObject({ status: 503, code: "audit_unavailable" });
    await expect(commitWithRecord(env.DB, "no_such_audit", [env.DB.prepare("INSERT INTO t_closed_data (id) VALUES (1)")], insert)).rejects.toThrow(/no such table/);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM t_closed_data").first("n")).toBe(0);
    // A constraint of the caller's own statement comes back as it is, and nothing is recorded.
    const chain = await makeChain("t_constraint");
    await env.DB.exec("CREATE TABLE IF NOT EXISTS t_unique (k TEXT PRIMARY KEY)");
    await env.DB.prepare("INSERT INTO t_unique (k) VALUES ('taken')").run();
    const err = await append(chain, "a", 1, [env.DB.prepare("INSERT INTO t_unique (k) VALUES ('taken')")]).catch((e: unknown) => e);
    expect(String(err)).toMatch(/UNIQUE constraint failed: t_unique\.k/);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM t_constraint").first("n")).toBe(0);
    expect(() => auditInsert(env.DB, "bad name", {})).toThrow(/unsafe/);
    expect(canonicalJson({ b: 1, a: "x" })).toBe('{"a":"x","b":1}');
  });
});

describe("the hashed text", () => {
  // The definitions the chain's hashes were made with: the fast forms must give exactly their text.
  const pairByPair = (row: ChainColumns) =>
    "{" + Object.keys(row).sort().map((k) => `${JSON.stringify(k)}:${JSON.stringify(row[k] ?? null)}`).join(",") + "}";
  const withoutDefaults = (row: Record<string, ChainValue>) => {
    const { seq: _s, prev_hash: _p, hash: _h, sealed_at: _a, ...data } = row;
    for (const [name, old] of Object.entries(LATE_COLUMNS)) if (name in data && data[name] === old) delete data[name];
    return data;
  };

  it("canonicalJson and splitRow give the text of the definitions, for any row", () => {
    const values: ChainValue[] = ["", "x", 'quote " and \\ backslash', "line\nbreak \u2028", "é 🩺 \u0000", "ten_default", 0, -1, 1.5, 1e21, 2 ** 53, null];
    const names = ["at", "b", "a_b", "z9", "origin", "tenant_id", "seq", "__proto__", "constructor", "0", "10", "01", "1e3"];
    // xorshift32: a fixed sequence of every subset and value mix.
    let seed = 7;
    const next = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return seed >>> 0;
    };
    let keyed = 0;
    for (let i = 0; i < 500; i++) {
      const row: Record<string, ChainValue> = {};
      for (const n of names) if (next() % 2) Object.defineProperty(row, n, { value: values[next() % values.length], enumerable: true, writable: true, configurable: true });
      keyed += Object.keys(row).length;
      expect(canonicalJson(row)).toBe(pairByPair(row));
      const split = splitRow({ ...row, seq: 5, prev_hash: null, hash: null, sealed_at: null });
      expect(split.data).toEqual(withoutDefaults({ ...row, seq: 5 }));
      expect(canonicalJson(split.data)).toBe(pairByPair(withoutDefaults({ ...row, seq: 5 })));
    }
    expect(keyed).toBeGreaterThan(500 * 5);
  });
});

describe("audit seal and verify", () => {
  it("seals pending records in seq order with a checkpoint; verify reports sealed and pending", async () => {
    const chain = await makeChain("t_seal");
    for (let i = 0; i < 7; i++) await append(chain, `a${i}`, i);
    const run = await sealPending(env.DB, chain, new Date("2026-12-01T00:00:00Z"), 5);
    expect(run).toMatchObject({ sealed: 5, more: true, checkpoint: { sealed_up_to: 5, sealed_count: 5, batch: 5 } });
    expect(await verifyChain(env.DB, chain)).toMatchObject({ ok: true, records: 5, sealed: 5, pending: 2, to: 5, complete: true });
    for (let i = 7; i < 10; i++) await append(chain, `a${i}`, i);
    expect((await sealPending(env.DB, chain, new Date())).sealed).toBe(5);
    const idle = await sealPending(env.DB, chain, new Date());
    expect(idle).toEqual({ sealed: 0, checkpoint: null, more: false, databaseBytes: expect.any(Number) as number });
    // The run reports the database's size, as D1 gives it after the run's statements.
    expect(idle.databaseBytes).toBe((await env.DB.prepare("SELECT 1").run()).meta.size_after);
    expect(idle.databaseBytes).toBeGreaterThan(0);
    const v = await verifyChain(env.DB, chain);
    const head = await env.DB.prepare("SELECT hash FROM t_seal WHERE seq = 10").first<{ hash: string }>();
    expect(v).toMatchObject({ ok: true, records: 10, head: head?.hash, sealed: 10, pending: 0, complete: true });
    expect(await latestCheckpoint(env.DB, chain)).toMatchObject({ sealed_up_to: 10, head_hash: head?.hash, sealed_count: 10, batch: 5 });
    const first = await env.DB.prepare("SELECT prev_hash, hash, actor, outcome, n FROM t_seal WHERE seq = 1").first<{ prev_hash: string; hash: string }>();
    expect(first?.prev_hash).toBe(GENESIS_HASH);
    expect(first?.hash).toBe(await chainHash(GENESIS_HASH, 1, { actor: "a0", outcome: "success", n: 0 }));
    // Listing pages through sealed and pending records alike.
    const page = await listAudit<{ seq: number }>(env.DB, chain.table, { after: 3, limit: 4, filters: [{ kind: "gte", column: "actor", value: "a" }] });
    expect(page.rows.map((r) => r.seq)).toEqual([4, 5, 6, 7]);
    expect(page.next).toBe(7);
  });

  it("triggers: no delete, no update of data, seal columns only once and only all together, no preset seal", async () => {
    const chain = await makeChain("t_guard");
    await append(chain, "a", 1);
    await append(chain, "b", 2);
    await sealPending(env.DB, chain, new Date(), 1);
    const refused = async (sql: string) => expect(env.DB.prepare(sql).run()).rejects.toThrow(/SQLITE_CONSTRAINT|append-only|seal once|unsealed/);
    await refused("DELETE FROM t_guard WHERE seq = 2");
    await refused("UPDATE t_guard SET actor = 'mallory' WHERE seq = 2");
    await refused("UPDATE t_guard SET hash = 'x' WHERE seq = 2");
    await refused("UPDATE t_guard SET prev_hash = 'x', hash = 'y', sealed_at = 'z' WHERE seq = 1");
    await refused("UPDATE t_guard SET prev_hash = 'x', hash = 'y', sealed_at = 'z', n = 9 WHERE seq = 2");
    await refused("INSERT INTO t_guard (hash, actor, outcome) VALUES ('forged', 'x', 'success')");
    expect(await verifyChain(env.DB, chain)).toMatchObject({ ok: true, sealed: 1, pending: 1 });
  });

  it("detects a tampered, a removed, a reordered and a truncated sealed record (guards dropped first)", async () => {
    const chain = await makeChain("t_tamper");
    for (let i = 0; i < 12; i++) await append(chain, `a${i}`, i);
    await sealPending(env.DB, chain, new Date());
    await dropGuards("t_tamper");
    await env.DB.prepare("UPDATE t_tamper SET actor = 'mallory' WHERE seq = 4").run();
    expect(await verifyChain(env.DB, chain)).toMatchObject({ ok: false, broken_at: 4, reason: "hash_mismatch", to: 3 });
    await env.DB.prepare("UPDATE t_tamper SET actor = 'a3' WHERE seq = 4").run();
    expect((await verifyChain(env.DB, chain)).ok).toBe(true);
    // Reordered: two records swap their data (seq is hashed, so both break).
    await env.DB.exec("UPDATE t_tamper SET actor = CASE seq WHEN 6 THEN 'a6' WHEN 7 THEN 'a5' END, n = CASE seq WHEN 6 THEN 6 WHEN 7 THEN 5 END WHERE seq IN (6, 7)");
    expect(await verifyChain(env.DB, chain)).toMatchObject({ ok: false, broken_at: 6, reason: "hash_mismatch" });
    await env.DB.exec("UPDATE t_tamper SET actor = CASE seq WHEN 6 THEN 'a5' WHEN 7 THEN 'a6' END, n = CASE seq WHEN 6 THEN 5 WHEN 7 THEN 6 END WHERE seq IN (6, 7)");
    expect((await verifyChain(env.DB, chain)).ok).toBe(true);
    // A relinked record (prev_hash rewritten): its link breaks.
    const keep = await env.DB.prepare("SELECT prev_hash FROM t_tamper WHERE seq = 9").first<{ prev_hash: string }>();
    await env.DB.prepare("UPDATE t_tamper SET prev_hash = ? WHERE seq = 9").bind(GENESIS_HASH).run();
    expect(await verifyChain(env.DB, chain)).toMatchObject({ ok: false, broken_at: 9, reason: "prev_hash_mismatch" });
    await env.DB.prepare("UPDATE t_tamper SET prev_hash = ? WHERE seq = 9").bind(keep?.prev_hash ?? "").run();
    // The newest sealed record removed: only the checkpoint can tell, and does.
    await env.DB.prepare("DELETE FROM t_tamper WHERE seq = 12").run();
    expect(await verifyChain(env.DB, chain)).toMatchObject({ ok: false, broken_at: 12, reason: "gap", to: 11 });
    // A record in the middle removed: a gap where it was.
    await env.DB.prepare("DELETE FROM t_tamper WHERE seq = 3").run();
    expect(await verifyChain(env.DB, chain)).toMatchObject({ ok: false, broken_at: 3, reason: "gap", to: 2 });
    expect(await verifyChain(env.DB, chain, { after: 3 })).toMatchObject({ ok: false, records: 0, broken_at: 3, reason: "gap" });
    // Seal columns cleared on a sealed record, with sealed ones after it: a break, not a pending record.
    await env.DB.prepare("UPDATE t_tamper SET hash = NULL WHERE seq = 2").run();
    expect(await verifyChain(env.DB, chain)).toMatchObject({ ok: false, broken_at: 2, reason: "hash_mismatch" });
  });

  it("verifies in segments (after, limit): a walk covers the sealed chain once and ends at the checkpoint", async () => {
    const chain = await makeChain("t_seg");
    for (let i = 0; i < 27; i++) await append(chain, `a${i}`, i);
    await sealPending(env.DB, chain, new Date());
    await append(chain, "late", 99);
    const full = await verifyChain(env.DB, chain);
    expect(full).toMatchObject({ ok: true, records: 27, from: 1, to: 27, next_after: null, complete: true, sealed: 27, pending: 1 });
    for (const [limit, pageSize] of [[5, 2], [9, 1000], [27, 4], [1, 1]] as const) {
      const segs = [];
      let after: number | null = 0;
      while (after !== null && segs.length < 60) {
        const s = await verifyChain(env.DB, chain, { after, limit, pageSize });
        segs.push(s);
        after = s.next_after;
      }
      expect(segs).toHaveLength(Math.ceil(27 / limit));
      expect(segs.every((s) => s.ok)).toBe(true);
      segs.forEach((s, i) => expect(s.from).toBe(i * limit + 1));
      expect(segs.at(-1)).toMatchObject({ head: full.ok ? full.head : "", to: 27, complete: true });
    }
    expect(await verifyChain(env.DB, chain, { after: 20, limit: 7 })).toMatchObject({ ok: true, records: 7, complete: true, next_after: null });
    expect(await verifyChain(env.DB, chain, { after: 27 })).toMatchObject({ ok: true, records: 0, from: null, complete: true });
    // Past the sealed head (the pending record, or nothing): 404, not a verdict.
    await expect(verifyChain(env.DB, chain, { after: 28 })).rejects.toMatchObject({ status: 404, code: "audit_record_not_found" });
    await expect(verifyChain(env.DB, chain, { after: 29 })).rejects.toMatchObject({ status: 404 });
    for (const bad of [{ after: -1 }, { after: 1.5 }, { limit: 0 }, { limit: 2.5 }, { pageSize: 0 }]) {
      await expect(verifyChain(env.DB, chain, bad)).rejects.toThrow(RangeError);
    }
  });
});

describe("the audited database's size", () => {
  it("is a gauge per database after each sealing run, with a warning every ten minutes past 80 % of D1's limit", () => {
    drain();
    const lines: string[] = [];
    const warn = vi.spyOn(console, "warn").mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
    const flushes: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void flushes.push(p) };
    // An export interval of an hour: nothing is due, so the gauge stays in the isolate to be read here.
    const env = { OTEL_METRIC_EXPORT_INTERVAL: "3600000" };
    const sizes = () => snapshot().find((m) => m.name === "d1_database_size_bytes")?.points;
    const filling = (msg: unknown) => jsonLines(lines).filter((l) => l.msg === "d1_database_filling" && l.database === msg);
    try {
      const t0 = 1_800_000_000_000;
      reportDatabaseSize({ service: "phi", database: "DB" }, 1_234_567, env, ctx, t0);
      reportDatabaseSize({ service: "phi", database: "DB_1" }, 0, env, ctx, t0); // D1 reported no size: nothing
      expect(sizes()).toEqual([{ labels: { database: "DB" }, value: 1_234_567 }]);
      expect(filling("DB")).toEqual([]);
      // Past the warning line: one warning, then none for ten minutes, then another.
      const full = Math.ceil(D1_DATABASE_LIMIT_BYTES * D1_SIZE_WARN_RATIO);
      reportDatabaseSize({ service: "phi", database: "DB" }, full, env, ctx, t0 + 1_000);
      reportDatabaseSize({ service: "phi", database: "DB" }, full + 1, env, ctx, t0 + 599_000);
      expect(filling("DB")).toEqual([expect.objectContaining({ level: "warn", bytes: full, limit_bytes: D1_DATABASE_LIMIT_BYTES })]);
      reportDatabaseSize({ service: "phi", database: "DB" }, full + 2, env, ctx, t0 + 601_000);
      expect(filling("DB")).toHaveLength(2);
      expect(sizes()).toEqual([{ labels: { database: "DB" }, value: full + 2 }]);
      expect(flushes).toEqual([]);
    } finally {
      warn.mockRestore();
      drain();
    }
  });
});
