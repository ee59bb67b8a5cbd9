/**
 * Property tests run with a fixed seed so that CI is reproducible and never flaky; set
 * FC_SEED=random to explore new inputs locally (a failure prints its seed and path), or
 * FC_SEED=<n> to replay one.
 */
import fc from "fast-check";

const requested = process.env.FC_SEED;
if (requested !== "random") {
  fc.configureGlobal({ seed: requested === undefined ? 20261121 : Number(requested) });
}
