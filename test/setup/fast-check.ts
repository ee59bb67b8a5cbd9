/**
 * Property tests run with a fixed seed so that CI is reproducible and never flaky; set
 * FC_SEED=random to explore new inputs locally (a failure prints its seed and path), or
 * FC_SEED=<n> to replay one.
 *
 * fast-check's default size ("small") keeps generated arrays and strings near 10 items
 * whatever their maxLength says. An arbitrary that must reach its declared length (long
 * lines, many parts, a bound to cross) says `size: "max"`; the default stays small so
 * that properties elsewhere keep their running time.
 */
import fc from "fast-check";

const requested = process.env.FC_SEED;
if (requested !== "random") {
  fc.configureGlobal({ seed: requested === undefined ? 20261121 : Number(requested) });
}
