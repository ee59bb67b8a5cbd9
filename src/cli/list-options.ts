/**
 * `missive send`'s bulk-mail flags: the message's list options (src/mime/list-headers.ts)
 * from the command line. cli.ts adds these to its options and help; every value is checked
 * by the message itself, so a bad one fails the same way as in code (exit 2).
 */
import { InvalidArgumentError } from "../errors.js";
import type { AutoSubmitted, ListOptions, ListUnsubscribe, Priority } from "../mime/list-headers.js";

export const LIST_CLI_OPTIONS = {
  "list-unsubscribe": { type: "string", multiple: true },
  "one-click": { type: "boolean" },
  "list-id": { type: "string" },
  "list-help": { type: "string", multiple: true },
  "list-archive": { type: "string", multiple: true },
  priority: { type: "string" },
  "auto-submitted": { type: "string" },
} as const;

export const LIST_CLI_HELP = `
Bulk mail:
  --list-unsubscribe URL  an https: URL or a mailto: URI to unsubscribe with; repeat
                     it to give both (at most one of each)
  --one-click        RFC 8058 one-click unsubscribe (List-Unsubscribe-Post); needs an
                     https: --list-unsubscribe URL
  --list-id "Name <id>"  List-Id (RFC 2919), e.g. "Weekly news <news.example.com>"
  --list-help URL    List-Help (repeatable)
  --list-archive URL List-Archive (repeatable)
  --priority high|normal|low  X-Priority, X-MSMail-Priority and Importance
  --auto-submitted auto-generated|auto-replied  Auto-Submitted (RFC 3834), so that
                     auto-responders do not answer`;

export interface ListCliValues {
  "list-unsubscribe"?: string[] | undefined;
  "one-click"?: boolean | undefined;
  "list-id"?: string | undefined;
  "list-help"?: string[] | undefined;
  "list-archive"?: string[] | undefined;
  priority?: string | undefined;
  "auto-submitted"?: string | undefined;
}

/** The message options the flags ask for (only those given). */
export function listOptionsFromArgs(v: ListCliValues): ListOptions {
  const options: ListOptions = {};
  const unsubscribe = v["list-unsubscribe"] ?? [];
  if (unsubscribe.length > 0) {
    const value: ListUnsubscribe = {};
    for (const uri of unsubscribe) {
      const slot = /^mailto:/i.test(uri) ? "mailto" : "url";
      if (value[slot] !== undefined) throw new InvalidArgumentError(`--list-unsubscribe takes at most one ${slot === "mailto" ? "mailto: URI" : "https: URL"}; got ${JSON.stringify(value[slot])} and ${JSON.stringify(uri)}`);
      value[slot] = uri;
    }
    if (v["one-click"]) value.oneClick = true;
    options.listUnsubscribe = value;
  } else if (v["one-click"]) {
    throw new InvalidArgumentError("--one-click needs an https: --list-unsubscribe URL");
  }
  if (v["list-id"] !== undefined) options.listId = v["list-id"];
  if (v["list-help"] !== undefined) options.listHelp = v["list-help"];
  if (v["list-archive"] !== undefined) options.listArchive = v["list-archive"];
  if (v.priority !== undefined) options.priority = v.priority as Priority;
  if (v["auto-submitted"] !== undefined) options.autoSubmitted = v["auto-submitted"] as AutoSubmitted;
  return options;
}
