import { issueForClient } from "../../../../shared/issues";
import { ReadingInput } from "../schemas/reading";

const utf8 = new TextEncoder();

/** Largest frame a device may send, in UTF-8 bytes: one reading is well under 1 KiB. */
export const MAX_FRAME_BYTES = 4096;

export interface ErrorFrame {
  error: "unsupported_frame" | "frame_too_large" | "invalid_json" | "invalid_reading" | "read_only";
  detail: string;
  seq?: number;
  issues?: { path: string; message: string }[];
}

export type FrameResult = { ok: true; reading: ReadingInput } | { ok: false; frame: ErrorFrame };

/** Parses one device frame (a JSON text message holding one reading). Never throws. */
export function parseFrame(message: string | ArrayBuffer): FrameResult {
  if (typeof message !== "string") {
    return { ok: false, frame: { error: "unsupported_frame", detail: "Send readings as JSON text frames." } };
  }
  // UTF-8 bytes, not UTF-16 units: a frame of multi-byte characters may hold up to three bytes per unit.
  if (message.length > MAX_FRAME_BYTES || (message.length * 3 > MAX_FRAME_BYTES && utf8.encode(message).byteLength > MAX_FRAME_BYTES)) {
    return { ok: false, frame: { error: "frame_too_large", detail: `Frames are limited to ${MAX_FRAME_BYTES} bytes.` } };
  }
  let data: unknown;
  try {
    data = JSON.parse(message);
  } catch {
    return { ok: false, frame: { error: "invalid_json", detail: "The frame is not valid JSON." } };
  }
  const r = ReadingInput.safeParse(data);
  if (r.success) return { ok: true, reading: r.data };
  const seq = typeof data === "object" && data !== null && "seq" in data ? data.seq : undefined;
  return {
    ok: false,
    frame: {
      error: "invalid_reading",
      detail: "The reading is not valid; it was not stored.",
      ...(typeof seq === "number" && Number.isSafeInteger(seq) ? { seq } : {}),
      issues: r.error.issues.slice(0, 10).map((i) => {
        const { path, message } = issueForClient(i, undefined);
        return { path, message };
      }),
    },
  };
}
