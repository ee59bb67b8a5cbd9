import { randomBytes, randomFillSync } from "node:crypto";

/**
 * Process-wide defaults for messages. `settings.ts` writes them; `mime` only reads them,
 * so that the message model never depends on the settings or backend layers.
 */

/** What `EmailMessage#send` needs from a backend. */
export interface MessageSender {
  sendMessages(messages: readonly unknown[]): Promise<number>;
}

export interface MessageDefaults {
  /** From address when a message has none (Django's DEFAULT_FROM_EMAIL). */
  readonly from: string;
  /** Charset for bodies and headers when a message does not name one. */
  readonly charset: string;
  /** Domain for generated Message-IDs; else the From address's domain, else "localhost". */
  readonly messageIdDomain: string | undefined;
  /** Source of the Date header. Injectable for reproducible output. */
  readonly clock: () => Date;
  /** Source of random bytes for Message-IDs and boundaries (a CSPRNG by default). */
  readonly random: (size: number) => Buffer;
  /** Builds the default backend for `EmailMessage#send` when the message has no connection. */
  readonly connectionFactory: ((options: { failSilently: boolean }) => MessageSender) | undefined;
}

/**
 * The CSPRNG in small draws: a Message-ID takes 18 bytes and a boundary 16, and asking
 * OpenSSL for each is a native call per draw. The bytes come from one randomFillSync of a
 * 4 KiB pool, each byte handed out once, as a copy of its own.
 */
const RANDOM_POOL = Buffer.alloc(4096);
let randomOffset = RANDOM_POOL.length;
function pooledRandom(size: number): Buffer {
  if (size > 256) return randomBytes(size);
  if (randomOffset + size > RANDOM_POOL.length) {
    randomFillSync(RANDOM_POOL);
    randomOffset = 0;
  }
  const out = Buffer.from(RANDOM_POOL.subarray(randomOffset, randomOffset + size));
  RANDOM_POOL.fill(0, randomOffset, randomOffset + size);
  randomOffset += size;
  return out;
}

const initial: MessageDefaults = Object.freeze({
  from: "webmaster@localhost",
  charset: "utf-8",
  messageIdDomain: undefined,
  clock: () => new Date(),
  random: pooledRandom,
  connectionFactory: undefined,
});

let current: MessageDefaults = initial;

export function getMessageDefaults(): MessageDefaults {
  return current;
}

/** Merges `changes` into the defaults; a key given as `undefined` goes back to its initial value. */
export function setMessageDefaults(changes: Partial<MessageDefaults>): void {
  const next: Record<string, unknown> = { ...current };
  for (const [key, value] of Object.entries(changes)) {
    next[key] = value === undefined ? initial[key as keyof MessageDefaults] : value;
  }
  current = Object.freeze(next as unknown as MessageDefaults);
}

export function resetMessageDefaults(): void {
  current = initial;
}
