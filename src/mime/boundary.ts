/**
 * Choosing a multipart boundary that does not occur in what it encloses (RFC 2046 §5.1.1:
 * "the boundary delimiter MUST NOT appear inside any of the encapsulated parts").
 *
 * Boundaries are 128 random bits, so a collision with real content practically never
 * happens; but an injected random source (tests, reproducible builds) can repeat itself,
 * and content may be crafted to hold a boundary seen before. So every boundary is checked
 * against all the bytes below it that are in memory — bodies, part headers, the boundaries of
 * multiparts further down, attached messages — and drawn again on a hit. Files and streams
 * are read only while the message is written, so they cannot be checked; there the 128 bits
 * are the guarantee.
 */
import { InvalidArgumentError } from "../errors.js";

/** Draws before giving up: with a working random source a second draw already never collides. */
export const MAX_BOUNDARY_DRAWS = 16;

/**
 * A boundary from `draw` whose delimiter (`--boundary`) `occursBelow` does not find.
 *
 * @throws InvalidArgumentError when `MAX_BOUNDARY_DRAWS` draws all collide (a random source
 *   that keeps returning the same bytes).
 */
export function chooseBoundary(draw: () => string, occursBelow: (delimiter: string) => boolean): string {
  for (let attempt = 0; attempt < MAX_BOUNDARY_DRAWS; attempt++) {
    const boundary = draw();
    if (!occursBelow(`--${boundary}`)) return boundary;
  }
  throw new InvalidArgumentError(
    `No MIME boundary that does not occur in the content was found in ${MAX_BOUNDARY_DRAWS} draws: the message's random source keeps returning the same bytes; give a random source that varies, or none (the CSPRNG)`,
  );
}
