-- The accounting of disclosures by patient (GET /v1/phi/audit?patient=) reads a patient's records through
-- phi_audit_patients instead of scanning the whole trail. drizzle-kit wrote the table; the rest is a hand edit:
-- the links of every record sealed so far, a trigger that adds a record's links when the sealer seals it (in the
-- sealer's own transaction, so a sealed record always has its links, whichever version of the code sealed it), and
-- the append-only guards. patient_ids is a comma-separated list of server ids; it is read as a JSON array (quotes
-- and backslashes escaped; a list that still is not valid JSON gets no links rather than stopping the sealer).
CREATE TABLE `phi_audit_patients` (
	`tenant_id` text NOT NULL,
	`patient_id` text NOT NULL,
	`seq` integer NOT NULL,
	PRIMARY KEY(`tenant_id`, `patient_id`, `seq`)
);--> statement-breakpoint
INSERT OR IGNORE INTO `phi_audit_patients` (`tenant_id`, `patient_id`, `seq`)
SELECT a.tenant_id, j.value, a.seq FROM `phi_audit` a, json_each(CASE WHEN json_valid('["' || replace(replace(replace(a.patient_ids, '\', '\\'), '"', '\"'), ',', '","') || '"]') THEN '["' || replace(replace(replace(a.patient_ids, '\', '\\'), '"', '\"'), ',', '","') || '"]' ELSE '[]' END) j
WHERE a.hash IS NOT NULL AND a.patient_ids != '' AND j.value != '';--> statement-breakpoint
CREATE TRIGGER `phi_audit_patients_on_seal` AFTER UPDATE OF `hash` ON `phi_audit`
WHEN OLD.hash IS NULL AND NEW.hash IS NOT NULL AND NEW.patient_ids != ''
BEGIN
  INSERT OR IGNORE INTO `phi_audit_patients` (`tenant_id`, `patient_id`, `seq`)
  SELECT NEW.tenant_id, j.value, NEW.seq FROM json_each(CASE WHEN json_valid('["' || replace(replace(replace(NEW.patient_ids, '\', '\\'), '"', '\"'), ',', '","') || '"]') THEN '["' || replace(replace(replace(NEW.patient_ids, '\', '\\'), '"', '\"'), ',', '","') || '"]' ELSE '[]' END) j WHERE j.value != '';
END;--> statement-breakpoint
CREATE TRIGGER `phi_audit_patients_no_update` BEFORE UPDATE ON `phi_audit_patients`
BEGIN SELECT RAISE(ABORT, 'audit patient links are append-only'); END;--> statement-breakpoint
CREATE TRIGGER `phi_audit_patients_no_delete` BEFORE DELETE ON `phi_audit_patients`
BEGIN SELECT RAISE(ABORT, 'audit patient links are append-only'); END;
