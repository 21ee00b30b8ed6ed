/**
 * A file of an export is its parts (one R2 object per chunk) back to back: streamed one
 * object at a time, so a file of any size is never held in memory, and a download costs
 * one R2 read per part (at most FILE_MAX_PARTS).
 */
export function concatParts(bucket: R2Bucket, keys: readonly string[]): ReadableStream<Uint8Array> {
  let next = 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        if (reader === null) {
          const key = keys[next++];
          if (key === undefined) {
            controller.close();
            return;
          }
          const object = await bucket.get(key);
          // A part gone mid-download (the job expired or was cancelled meanwhile): the stream fails, never silently short.
          if (object === null) throw new Error("export part missing");
          reader = object.body.getReader();
        }
        const { done, value } = await reader.read();
        if (!done) {
          controller.enqueue(value);
          return;
        }
        reader = null;
      }
    },
    async cancel() {
      await reader?.cancel();
    },
  });
}
