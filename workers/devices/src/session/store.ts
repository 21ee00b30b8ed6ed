import type { Alarm, AlarmsQuery, Reading, ReadingInput, ReadingsQuery } from "../schemas/reading";
import type { Limits } from "../schemas/thresholds";

/**
 * The device's own SQLite (one Durable Object per device). `readings.seq` is the
 * primary key: a resent sequence number can never be stored twice (HL7 PHD IG,
 * deduplication of resent measurements), and the first value sent wins.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS readings (
  seq INTEGER PRIMARY KEY, code TEXT NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL,
  device_time TEXT NOT NULL, received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_code ON readings (code, seq);
CREATE INDEX IF NOT EXISTS readings_time ON readings (device_time);
CREATE TABLE IF NOT EXISTS alarms (
  id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL, code TEXT NOT NULL, value REAL NOT NULL,
  unit TEXT NOT NULL, kind TEXT NOT NULL, limit_value REAL NOT NULL, thresholds_version INTEGER NOT NULL,
  device_time TEXT NOT NULL, raised_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS presence (
  id INTEGER PRIMARY KEY AUTOINCREMENT, online INTEGER NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

type ReadingRow = Reading & Record<string, SqlStorageValue>;
type AlarmRow = Omit<Alarm, "limit"> & { limit_value: number } & Record<string, SqlStorageValue>;

function toReading(r: ReadingRow): Reading {
  return { seq: r.seq, code: r.code, value: r.value, unit: r.unit, device_time: r.device_time, received_at: r.received_at };
}

function toAlarm(r: AlarmRow): Alarm {
  return {
    id: r.id,
    seq: r.seq,
    code: r.code,
    value: r.value,
    unit: r.unit,
    kind: r.kind,
    limit: r.limit_value,
    thresholds_version: r.thresholds_version,
    device_time: r.device_time,
    raised_at: r.raised_at,
  };
}

export interface ActiveThresholds {
  version: number;
  limits: Limits;
}

export class SessionStore {
  /**
   * Write-through copy of `meta`, read on every frame (decommissioned, online,
   * device id, thresholds). The object is single-threaded and this store is the
   * only writer of its SQLite, so the copy cannot go stale while the object
   * lives; a new instance (after hibernation or eviction) starts empty and reads
   * through. `setMeta` is never called inside `transactionSync`, whose rollback
   * the copy would not see.
   */
  private readonly meta = new Map<string, string | null>();
  private parsedThresholds?: { raw: string; value: ActiveThresholds };

  constructor(private readonly sql: SqlStorage) {}

  migrate(): void {
    this.sql.exec(SCHEMA);
  }

  /** How many readings and alarms the object holds (what an erasure reports). */
  counts(): { readings: number; alarms: number } {
    const row = this.sql
      .exec<{ readings: number; alarms: number }>("SELECT (SELECT COUNT(*) FROM readings) AS readings, (SELECT COUNT(*) FROM alarms) AS alarms")
      .one();
    return { readings: row.readings, alarms: row.alarms };
  }

  /** After the object's storage was deleted: no cached value may outlive it, and the tables are made anew. */
  reset(): void {
    this.meta.clear();
    this.parsedThresholds = undefined;
    this.migrate();
  }

  getMeta(key: string): string | null {
    if (this.meta.has(key)) return this.meta.get(key) ?? null;
    const row = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0];
    const value = row ? row.value : null;
    this.meta.set(key, value);
    return value;
  }

  setMeta(key: string, value: string): void {
    // Forget first: should the write throw, the next read goes to SQLite.
    this.meta.delete(key);
    this.sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value);
    this.meta.set(key, value);
  }

  /** Stores a reading unless its seq is already stored; the stored reading, or null for a duplicate. */
  insertReading(r: ReadingInput, receivedAt: string): Reading | null {
    // device_time is kept as an instant in UTC so range queries compare correctly as text: the schema
    // (ReadingInput, as ReadingsQuery for since/until) admits only instants whose UTC form has a four-digit year.
    const deviceTime = new Date(r.device_time).toISOString();
    const cur = this.sql.exec(
      "INSERT INTO readings (seq, code, value, unit, device_time, received_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(seq) DO NOTHING",
      r.seq,
      r.code,
      r.value,
      r.unit,
      deviceTime,
      receivedAt,
    );
    if (cur.rowsWritten === 0) return null;
    return { seq: r.seq, code: r.code, value: r.value, unit: r.unit, device_time: deviceTime, received_at: receivedAt };
  }

  insertAlarm(a: Omit<Alarm, "id">): Alarm {
    const row = this.sql
      .exec<{ id: number }>(
        `INSERT INTO alarms (seq, code, value, unit, kind, limit_value, thresholds_version, device_time, raised_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
        a.seq,
        a.code,
        a.value,
        a.unit,
        a.kind,
        a.limit,
        a.thresholds_version,
        a.device_time,
        a.raised_at,
      )
      .one();
    return { id: row.id, ...a };
  }

  history(q: ReadingsQuery): Reading[] {
    const where: string[] = ["seq > ?"];
    const binds: SqlStorageValue[] = [q.after ?? -1];
    if (q.code) {
      where.push("code = ?");
      binds.push(q.code);
    }
    if (q.since) {
      where.push("device_time >= ?");
      binds.push(new Date(q.since).toISOString());
    }
    if (q.until) {
      where.push("device_time < ?");
      binds.push(new Date(q.until).toISOString());
    }
    return this.sql
      .exec<ReadingRow>(`SELECT * FROM readings WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ?`, ...binds, q.limit)
      .toArray()
      .map(toReading);
  }

  alarms(q: AlarmsQuery): Alarm[] {
    return this.sql
      .exec<AlarmRow>("SELECT * FROM alarms WHERE id > ? ORDER BY id LIMIT ?", q.after ?? 0, q.limit)
      .toArray()
      .map(toAlarm);
  }

  /** The newest reading (highest seq) of each code: SQLite returns the bare columns of the MAX row. */
  lastReadings(): Reading[] {
    return this.sql
      .exec<ReadingRow>("SELECT code, value, unit, device_time, received_at, MAX(seq) AS seq FROM readings GROUP BY code ORDER BY code")
      .toArray()
      .map(toReading);
  }

  recordPresence(online: boolean, reason: string, at: string): void {
    this.sql.exec("INSERT INTO presence (online, reason, at) VALUES (?, ?, ?)", online ? 1 : 0, reason, at);
  }

  presenceLog(limit: number): { online: boolean; reason: string; at: string }[] {
    return this.sql
      .exec<{ online: number; reason: string; at: string }>("SELECT online, reason, at FROM presence ORDER BY id DESC LIMIT ?", limit)
      .toArray()
      .map((r) => ({ online: r.online === 1, reason: r.reason, at: r.at }));
  }

  /** The active thresholds (parsed once per stored value; callers must not modify the result). */
  thresholds(): ActiveThresholds {
    const raw = this.getMeta("thresholds");
    if (!raw) return { version: 0, limits: {} };
    if (this.parsedThresholds?.raw !== raw) this.parsedThresholds = { raw, value: JSON.parse(raw) as ActiveThresholds };
    return this.parsedThresholds.value;
  }
}
