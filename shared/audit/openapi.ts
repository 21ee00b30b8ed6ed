import { z } from "@hono/zod-openapi";

/** The verify answer's shape, one for the three trails (field docs in ./verify.ts). */
export function verifyResultSchema(afterName = "after") {
  return z.object({
    ok: z.boolean(),
    records: z.number().int().openapi({ description: "Sealed records verified intact in this segment" }),
    head: z.string().optional().openapi({ description: `Hash of the last record verified (of \`${afterName}\` when none was); when ok` }),
    broken_at: z.number().int().optional().openapi({ description: "Seq of the first broken link (or missing record); when not ok" }),
    reason: z.enum(["hash_mismatch", "prev_hash_mismatch", "gap"]).optional(),
    from: z.number().int().nullable().openapi({ description: `First sealed seq this segment examined; null when none followed \`${afterName}\`` }),
    to: z.number().int().nullable().openapi({ description: "Last seq this segment verified intact; null when none" }),
    next_after: z.number().int().nullable().openapi({ description: `Pass as \`${afterName}\` for the next segment; null when complete or broken` }),
    complete: z.boolean().openapi({ description: "True only when this segment reached the sealed head and matched the latest checkpoint" }),
    sealed: z.number().int().openapi({ description: "Records of the chain sealed so far" }),
    pending: z.number().int().openapi({ description: "Records written but not yet sealed (sealed within AUDIT_SEAL_DELAY_MS; triggers forbid changing or deleting them meanwhile)" }),
    checkpoint: z
      .object({ sealed_up_to: z.number().int(), head_hash: z.string(), sealed_count: z.number().int(), batch: z.number().int(), at: z.string() })
      .nullable()
      .openapi({ description: "The latest checkpoint the sealer recorded" }),
  });
}

/** The seal columns of a listed record: null while pending. */
export const sealFields = {
  seq: z.number().int(),
  prev_hash: z.string().nullable(),
  hash: z.string().nullable(),
  sealed_at: z.string().nullable(),
};
