/**
 * `missive/dkim`: DKIM signing (RFC 6376 rsa-sha256, RFC 8463 ed25519-sha256) for messages
 * in their rendered shape or as raw bytes, and the key tools behind `missive dkim keygen`.
 */
export { signMessage } from "./sign-message.js";
export type { MessageSource } from "./sign-message.js";
export { signRendered } from "./sign.js";
export type { HeaderField, RenderedLike, SignOptions } from "./sign.js";
export { DkimSigner, DEFAULT_SIGNED_HEADERS, DEFAULT_OVERSIGNED_HEADERS, dkimSetting } from "./options.js";
export type { DkimOptions, DkimCanonicalization, DkimSetting, DkimSignerInput, DkimSigners } from "./options.js";
export { keyRecord, keyRecordName, txtStrings, zoneFileLine, publicKeyData, ed25519PrivateKeyFromSeed, MIN_RSA_BITS } from "./keys.js";
export type { DkimAlgorithm, PrivateKeyInput } from "./keys.js";
export { canonicalizeBody, canonicalizeHeader, SimpleBodyCanonicalizer, RelaxedBodyCanonicalizer } from "./canonicalize.js";
export type { BodyCanonicalizer, ByteSink, CanonicalizationAlgorithm } from "./canonicalize.js";
export { ConfigurationError, InvalidArgumentError } from "../errors.js";
