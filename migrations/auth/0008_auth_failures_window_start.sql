-- auth_failures: ended windows are pruned by the failure path (DELETE ... WHERE window_start <= now - window, bounded),
-- so the range is read through this index instead of scanning every live window on each failure.
CREATE INDEX `auth_failures_window_start` ON `auth_failures` (`window_start`);