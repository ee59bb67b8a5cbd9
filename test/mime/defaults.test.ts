// The default source of randomness for Message-IDs and boundaries: a CSPRNG drawn in small
// pieces from a pool. Each draw must be the size asked for, a buffer of its own, and new.
import { describe, expect, it } from "vitest";
import { getMessageDefaults } from "../../src/mime/defaults.js";

describe("the default random source", () => {
  it("gives fresh buffers of the size asked for, never the same bytes twice", () => {
    const random = getMessageDefaults().random;
    const draws = Array.from({ length: 600 }, (_, i) => random([18, 16, 1, 300][i % 4]!));
    expect(draws.map((d) => d.length)).toEqual(Array.from({ length: 600 }, (_, i) => [18, 16, 1, 300][i % 4]));
    const long = draws.filter((d) => d.length >= 16).map((d) => d.toString("hex"));
    expect(new Set(long).size).toBe(long.length);
    // A draw is the caller's: changing it changes no other draw.
    const [a, b] = [random(18), random(18)];
    const copy = Buffer.from(b);
    a.fill(0);
    expect(b).toEqual(copy);
    expect(a.buffer === b.buffer && a.byteOffset === b.byteOffset).toBe(false);
  });
});
