import { z } from "@hono/zod-openapi";
import { isCalendarDate } from "../generator/dates";

/**
 * Seeds are short tokens without `:` so the synthetic identifier `<seed>:<index>`
 * is unambiguous and needs no escaping in a FHIR search (`identifier=system|value`).
 */
export const Seed = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, "1-64 characters among A-Z a-z 0-9 _ -")
  .openapi({ example: "qa-run-42" });

/** A calendar date within 1900..2199: birth dates up to 95 years before it stay in 4-digit years. */
export const ReferenceDate = z
  .string()
  .refine(isCalendarDate, "a calendar date YYYY-MM-DD")
  .refine((d) => d >= "1900-01-01" && d <= "2199-12-31", "between 1900-01-01 and 2199-12-31")
  .openapi({ example: "2025-01-01" });
