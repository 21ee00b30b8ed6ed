/**
 * Test helper: the JSON objects among captured console lines. Tests read the
 * lines they own (by `msg`, `request_id`); a line that is not one JSON object
 * (another library's output, a runtime warning) is not theirs and is skipped
 * rather than failing the parse.
 */
export function jsonLines(lines: string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of lines) {
    try {
      const v = JSON.parse(line) as unknown;
      if (v !== null && typeof v === "object" && !Array.isArray(v)) out.push(v as Record<string, unknown>);
    } catch {
      // Not one of ours: see above.
    }
  }
  return out;
}
