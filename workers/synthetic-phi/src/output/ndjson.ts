import { generatePatient, resourcesOf } from "../generator/patient";
import type { Slice } from "./bundle";
import { countGenerated } from "./metrics";

/**
 * FHIR Bulk Data style NDJSON (one resource per line, application/fhir+ndjson)
 * as a pull-based stream: each pull generates one patient's lines, and nothing
 * is generated until the consumer asks, so memory stays bounded by one patient
 * whatever the count (and a client that disconnects stops the work).
 */
export function ndjsonStream(s: Slice): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let i = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (i >= s.count) {
          controller.close();
          return;
        }
        const record = generatePatient(s, s.offset + i);
        i++;
        countGenerated("ndjson");
        let text = "";
        for (const resource of resourcesOf(record)) text += JSON.stringify(resource) + "\n";
        controller.enqueue(encoder.encode(text));
      },
    },
    // Queue at most one patient ahead of the reader.
    { highWaterMark: 1 },
  );
}
