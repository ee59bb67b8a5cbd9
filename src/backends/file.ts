import { randomBytes } from "node:crypto";
import { mkdir, open, rename, stat, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { BackendError, ConfigurationError } from "../errors.js";
import type { EmailMessage } from "../mime/message.js";
import { getSettings, type Settings } from "../settings.js";
import { systemClock } from "../observe/clock.js";
import { BaseEmailBackend, observationOf, publishSent, reportEach, SETTINGS_FALLBACK, type BackendOptions } from "./base.js";
import { backendSigning, type Signing, type SigningOptions } from "./dkim.js";
import { isDeliveryError, prepareForOutput } from "./output.js";
import { acceptedReport, attachReports, failedReport, type SendOptions, type SendReport } from "./report.js";

export interface FileBackendOptions extends BackendOptions, SigningOptions {
  /** The directory for the `.eml` files (setting `filePath`, env `EMAIL_FILE_PATH`). Created if missing. */
  filePath?: string | undefined;
  /** fsync each file and the directory before counting the message as written (slower, crash-safe). */
  fsync?: boolean | undefined;
}

/**
 * Writes each message as its own `.eml` file (the exact bytes SMTP would send, CRLF) in
 * a directory. A file appears whole or not at all: the bytes go to a hidden temporary
 * file in the same directory, which is then renamed. Names sort by time:
 * `20250102T030405123Z-<16 hex>.eml`.
 */
export class FileBackend extends BaseEmailBackend {
  readonly filePath: string;
  readonly fsync: boolean;
  /** The paths of the files written by this backend, in order. */
  readonly written: string[] = [];
  /** DKIM: this backend's `dkim` (else the setting's) and the clock for t=. */
  readonly #signing: Signing;

  constructor(options: FileBackendOptions = {}) {
    super(options);
    const fallback = (options as { [SETTINGS_FALLBACK]?: Settings })[SETTINGS_FALLBACK] ?? getSettings();
    const filePath = options.filePath ?? fallback.filePath;
    if (filePath === undefined || filePath === "") {
      throw new ConfigurationError("filePath", "The file backend needs a directory: pass filePath, configure({ filePath }) or set EMAIL_FILE_PATH");
    }
    if (typeof filePath !== "string") throw new ConfigurationError("filePath", "filePath must be a string");
    this.filePath = resolve(filePath);
    this.fsync = options.fsync ?? false;
    this.#signing = backendSigning(options);
  }

  /** Checks the directory (creating it if needed); there is no connection to keep, so false. */
  override async open(): Promise<boolean> {
    await this.ensureDirectory();
    return false;
  }

  async sendMessages(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<number> {
    return (await this.sendMessagesWithReport(messages, options)).sent;
  }

  override async sendMessagesWithReport(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<SendReport> {
    if (messages.length === 0) return { sent: 0, reports: [] };
    try {
      await this.ensureDirectory();
    } catch (err) {
      if (!isDeliveryError(err)) throw err;
      // The directory is unusable: every message fails with that (each is still checked first).
      const at = systemClock.now();
      const reports = messages.map((m) => failedReport(m, undefined, err as BackendError, m.envelope({ smtputf8: m.needsSmtpUtf8() }).to, at));
      const carriesOn = this.failSilently || options.stopOnError === false;
      // Each message given a report was a delivery that failed: observed as such.
      for (const report of carriesOn ? reports : reports.slice(0, 1)) {
        await observationOf(this).reported({ recipients: report.attempts[0]?.recipients ?? [], route: options.route, attempt: options.attempt, message: report.message }, report);
      }
      if (!carriesOn) throw attachReports(err, reports.slice(0, 1));
      return { sent: 0, reports };
    }
    return reportEach(this, messages, options, { skipWithoutRecipients: false }, async (message, recipients) => {
      const at = systemClock.now();
      const prepared = await prepareForOutput(message, this.#signing);
      const path = await this.writeFile(prepared.stream());
      this.written.push(path);
      publishSent({ backend: "file", message, messageId: prepared.messageId, recipients: message.recipients(), path });
      return acceptedReport(message, prepared.messageId, recipients, at);
    });
  }

  private async ensureDirectory(): Promise<void> {
    try {
      await mkdir(this.filePath, { recursive: true });
    } catch (err) {
      throw this.directoryError(err);
    }
    const st = await stat(this.filePath).catch((err: unknown) => {
      throw this.directoryError(err);
    });
    if (!st.isDirectory()) throw new BackendError(`The file backend's path ${this.filePath} exists but is not a directory`);
  }

  private directoryError(err: unknown): BackendError {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === "EEXIST" || code === "ENOTDIR" ? "a part of it is a file, not a directory"
      : code === "EACCES" || code === "EPERM" || code === "EROFS" ? "it is not writable"
      : (err as Error).message;
    return new BackendError(`The file backend cannot use ${this.filePath}: ${why}`, { cause: err });
  }

  private async writeFile(source: Readable): Promise<string> {
    const name = `${timestamp(new Date())}-${randomBytes(8).toString("hex")}.eml`;
    const finalPath = join(this.filePath, name);
    const tempPath = join(this.filePath, `.${name}.tmp`);
    let handle;
    try {
      handle = await open(tempPath, "wx", 0o644);
    } catch (err) {
      source.destroy();
      throw this.directoryError(err);
    }
    let complete = false;
    try {
      // Each chunk is written before the next is read: memory stays bounded by the chunk
      // size. Errors of the source (a bad header, an unreadable attachment) pass through
      // as they are; errors of the file become BackendError.
      for await (const chunk of source) {
        const bytes = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Uint8Array);
        try {
          for (let offset = 0; offset < bytes.length; ) {
            const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
            offset += bytesWritten;
          }
        } catch (err) {
          source.destroy();
          throw this.writeError(finalPath, err);
        }
      }
      try {
        if (this.fsync) await handle.sync();
        await handle.close();
        handle = undefined;
        await rename(tempPath, finalPath);
        complete = true;
        if (this.fsync) await syncDirectory(this.filePath);
      } catch (err) {
        throw this.writeError(finalPath, err);
      }
      return finalPath;
    } finally {
      await handle?.close().catch(() => undefined);
      if (!complete) await unlink(tempPath).catch(() => undefined);
    }
  }

  private writeError(path: string, err: unknown): BackendError {
    return new BackendError(`Could not write ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function timestamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(".", "");
}

async function syncDirectory(dir: string): Promise<void> {
  const h = await open(dir, "r");
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}
