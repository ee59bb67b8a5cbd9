import { Transform } from "node:stream";
import type { TransformCallback, TransformOptions } from "node:stream";

/**
 * A streaming encoder core: bytes in, bytes out, no knowledge of streams. State carried
 * between chunks is kept to the least the format needs, so any split of the input gives
 * the same output as one call.
 */
export interface ChunkEncoder {
  /** Encodes a chunk and returns what can be emitted now (may be empty). */
  encode(chunk: Uint8Array): Buffer;
  /** Returns the rest of the output; the encoder is then reset. */
  flush(): Buffer;
  /** Drops any buffered state, ready for a new input. */
  reset(): void;
}

/**
 * The one adapter from an encoder core to a `Transform`. Backpressure is the Transform's:
 * each input chunk produces at most one pushed buffer, and the callback is only called
 * after the push.
 */
export function encoderTransform(
  encoder: ChunkEncoder,
  options: Pick<TransformOptions, "highWaterMark" | "signal"> = {},
): Transform {
  return new Transform({
    ...options,
    decodeStrings: true,
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
      let out: Buffer;
      try {
        out = encoder.encode(chunk);
      } catch (error) {
        callback(error as Error);
        return;
      }
      if (out.length > 0) this.push(out);
      callback();
    },
    flush(callback: TransformCallback): void {
      let out: Buffer;
      try {
        out = encoder.flush();
      } catch (error) {
        callback(error as Error);
        return;
      }
      if (out.length > 0) this.push(out);
      callback();
    },
  });
}
