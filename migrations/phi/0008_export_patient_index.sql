-- Bulk export reads a patient's resources in (patient, type, id) order and resumes inside one patient's history
-- with a seek (workers/phi/src/export/chunk.ts): the patient index gains the type and the id. drizzle-kit wrote this file.
DROP INDEX `resource_versions_patient`;--> statement-breakpoint
CREATE INDEX `resource_versions_patient` ON `resource_versions` (`tenant_id`,`patient_id`,`resource_type`,`id`);