/**
 * A file to attach, named explicitly. Attaching a local file must be something the
 * application's code asks for, never something plain data can ask for: an attachment built
 * from a JSON request body (`{ content: { path: "/etc/passwd" } }`) would otherwise read and
 * mail any file the process can open. `fileContent(path)` (or `attachFile(path)`) makes the
 * one value that reads a file; its brand is a symbol key, which JSON, query strings and
 * structured clones cannot produce. `Symbol.for`, so that two copies of missive (ESM and
 * CJS) accept each other's values.
 */
import { InvalidArgumentError } from "../errors.js";

const FILE_CONTENT: unique symbol = Symbol.for("missive.fileContent") as never;

export interface FileContent {
  /** The file's path, read when the message is sent (not when it is attached). */
  readonly path: string;
  readonly [FILE_CONTENT]: true;
}

/** A file source for an attachment or a MimePart body: `attach("a.pdf", fileContent("/srv/a.pdf"))`. */
export function fileContent(path: string): FileContent {
  if (typeof path !== "string" || path === "") throw new InvalidArgumentError("fileContent(path) needs a non-empty file path");
  if (path.includes("\0")) throw new InvalidArgumentError("A file path cannot contain NUL");
  const value = { path } as { path: string; [FILE_CONTENT]: true };
  Object.defineProperty(value, FILE_CONTENT, { value: true, enumerable: false });
  return Object.freeze(value);
}

export function isFileContent(value: unknown): value is FileContent {
  return typeof value === "object" && value !== null && (value as { [FILE_CONTENT]?: unknown })[FILE_CONTENT] === true && typeof (value as { path?: unknown }).path === "string";
}
