import iconv from "iconv-lite";

/**
 * Characters each legacy charset can hold, found by decoding its byte sequences and
 * keeping those that encode back to the same bytes (so the pool has no lossy mappings).
 */
function roundTrips(bytes: number[], charset: string): string | undefined {
  const text = iconv.decode(Buffer.from(bytes), charset);
  if (text.length === 0 || text.includes("\ufffd") || [...text].length !== 1) return undefined;
  return iconv.encode(text, charset).equals(Buffer.from(bytes)) ? text : undefined;
}

function singleByte(charset: string): string[] {
  const pool: string[] = [];
  for (let b = 0x20; b <= 0xff; b++) {
    if (b === 0x7f) continue;
    const ch = roundTrips([b], charset);
    if (ch !== undefined) pool.push(ch);
  }
  return pool;
}

function doubleByte(charset: string, leads: [number, number], trails: [number, number], step = 3): string[] {
  const pool: string[] = [];
  for (let l = leads[0]; l <= leads[1]; l += step) {
    for (let t = trails[0]; t <= trails[1]; t += step) {
      const ch = roundTrips([l, t], charset);
      if (ch !== undefined) pool.push(ch);
    }
  }
  return pool;
}

const ascii = Array.from({ length: 0x5f }, (_, i) => String.fromCharCode(0x20 + i));

export const POOLS: Record<string, string[]> = {
  "iso-8859-1": singleByte("iso-8859-1"),
  "koi8-r": singleByte("koi8-r"),
  "shift_jis": [...ascii.filter((c) => c !== "\\" && c !== "~"), ...doubleByte("shift_jis", [0x81, 0x9f], [0x40, 0xfc])],
  gb2312: [...ascii, ...doubleByte("gb2312", [0xb0, 0xf7], [0xa1, 0xfe])],
  big5: [...ascii, ...doubleByte("big5", [0xa4, 0xc6], [0xa1, 0xfe])],
  // JIS X 0208 through EUC-JP, plus ASCII and the two JIS-Roman characters.
  "iso-2022-jp": [...ascii, "\u00a5", "\u203e", ...doubleByte("euc-jp", [0xa1, 0xf4], [0xa1, 0xfe])],
};
