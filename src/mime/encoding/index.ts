export type { ChunkEncoder } from "./transform.js";
export { encoderTransform } from "./transform.js";
export { Base64Encoder, base64EncodedLength, encodeBase64 } from "./base64.js";
export { QuotedPrintableEncoder, decodeQuotedPrintable, encodeQuotedPrintable } from "./quoted-printable.js";
export type { EncodedWordContext, EncodeWordsOptions } from "./encoded-word.js";
export { decodeWords, encodeWords, needsEncoding } from "./encoded-word.js";
export type { FormatParameterOptions } from "./rfc2231.js";
export { MAX_SEGMENT_LENGTH, formatParameter, parseParameters } from "./rfc2231.js";
export {
  assertWellFormed,
  decodeText,
  encodeInPieces,
  encodeText,
  isStatelessCharset,
  isUtf8,
  normalizeCharset,
} from "./charset.js";
export { BYTE_CLASS } from "./byte-classes.js";
