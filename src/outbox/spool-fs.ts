/**
 * The file-system calls the spool makes, behind one small interface, so that a test can
 * record them and check their order (a file is fsynced before it is renamed into place; a
 * directory is fsynced after an entry was renamed into it), and the durable-write helpers
 * built on them.
 *
 * Durability on POSIX file systems needs both halves: fsync(file) makes the bytes durable,
 * and fsync(directory) makes the name that points at them durable — a rename is only as
 * durable as the directory entry it changed (see fsync(2), and the "rename then fsync the
 * directory" rule that Postfix, SQLite and LevelDB follow).
 */
import { createReadStream } from "node:fs";
import { link, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, utimes } from "node:fs/promises";
import { join } from "node:path";

export interface SpoolFileHandle {
  write(bytes: Uint8Array): Promise<void>;
  /** fsync(2). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface SpoolFileSystem {
  /** Creates `path` for writing; fails if it exists. */
  create(path: string): Promise<SpoolFileHandle>;
  /** fsync(2) on a directory: makes the entries renamed into (or out of) it durable. */
  syncDirectory(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** link(2): fails with EEXIST when `to` exists (an atomic claim of a name). */
  link(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  /** Removes a directory and what it holds. */
  remove(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<Buffer>;
  /** The first `length` bytes of a file. */
  readStart(path: string, length: number): Promise<Buffer>;
  /** The bytes of a file from `start`, in chunks of at most `chunkSize`. */
  readFrom(path: string, start: number, chunkSize: number): AsyncIterable<Uint8Array>;
  stat(path: string): Promise<{ readonly size: number; readonly mtimeMs: number; isDirectory(): boolean }>;
  /** Sets a path's modification time (ms): the spool's "not before" for deferred messages. */
  setMtime(path: string, ms: number): Promise<void>;
}

/** The real file system. */
export const nodeSpoolFs: SpoolFileSystem = {
  async create(path) {
    const handle = await open(path, "wx", 0o600);
    return {
      async write(bytes) {
        for (let offset = 0; offset < bytes.length; ) offset += (await handle.write(bytes, offset, bytes.length - offset)).bytesWritten;
      },
      sync: () => handle.sync(),
      close: () => handle.close(),
    };
  },
  async syncDirectory(path) {
    const handle = await open(path, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  rename: (from, to) => rename(from, to),
  link: (from, to) => link(from, to),
  unlink: (path) => unlink(path),
  mkdir: async (path) => void (await mkdir(path, { recursive: true, mode: 0o700 })),
  rmdir: (path) => rmdir(path),
  remove: (path) => rm(path, { recursive: true, force: true }),
  readdir: (path) => readdir(path),
  readFile: (path) => readFile(path),
  async readStart(path, length) {
    const handle = await open(path, "r");
    try {
      const buffer = Buffer.alloc(length);
      let read = 0;
      while (read < length) {
        const { bytesRead } = await handle.read(buffer, read, length - read, read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      return buffer.subarray(0, read);
    } finally {
      await handle.close();
    }
  },
  readFrom: (path, start, chunkSize) => createReadStream(path, { start, highWaterMark: chunkSize }),
  stat: (path) => stat(path),
  setMtime: (path, ms) => utimes(path, new Date(ms), new Date(ms)),
};

/**
 * Writes `bytes` as `dir/name` so that the file appears whole or not at all, and durably:
 * a temporary file in the same directory, fsync, rename over `name`, fsync the directory.
 */
export async function writeDurably(fs: SpoolFileSystem, dir: string, name: string, bytes: Uint8Array): Promise<void> {
  const temp = join(dir, `.${name}.tmp`);
  await fs.unlink(temp).catch(() => undefined);
  const handle = await fs.create(temp);
  try {
    await handle.write(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temp, join(dir, name));
  await fs.syncDirectory(dir);
}

/** Writes a new file from a stream of chunks (each written before the next is read) and fsyncs it; resolves to its size. */
export async function writeStream(fs: SpoolFileSystem, path: string, chunks: AsyncIterable<Uint8Array>, maxSize: number | undefined, tooLarge: () => Error): Promise<number> {
  const handle = await fs.create(path);
  let size = 0;
  try {
    for await (const chunk of chunks) {
      size += chunk.length;
      if (maxSize !== undefined && size > maxSize) throw tooLarge();
      await handle.write(chunk);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return size;
}

/** The errno code of a file-system error. */
export function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}
