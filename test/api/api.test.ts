import { PassThrough } from "node:stream";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { getConnection, mailAdmins, mailManagers, sendMail, sendMassMail } from "../../src/api.js";
import { BaseEmailBackend, type BackendOptions } from "../../src/backends/base.js";
import { ConsoleBackend } from "../../src/backends/console.js";
import { DummyBackend } from "../../src/backends/dummy.js";
import { FileBackend } from "../../src/backends/file.js";
import { MemoryBackend } from "../../src/backends/memory.js";
import { registerBackend, unregisterBackend } from "../../src/backends/registry.js";
import { SmtpBackend } from "../../src/backends/smtp.js";
import {
  BackendError,
  BadHeaderError,
  ConfigurationError,
  InvalidAddressError,
  InvalidArgumentError,
  SmtpError,
} from "../../src/errors.js";
import { EmailMessage, EmailMultiAlternatives } from "../../src/mime/message.js";
import { configure, resetSettings } from "../../src/settings.js";
import { clearOutbox, outbox, restoreBackend, setupTestMail, useMemoryBackend } from "../../src/testing.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";

/** Records what it was built with and what it was asked to do. */
class RecordingBackend extends BaseEmailBackend {
  static instances: RecordingBackend[] = [];
  options: Record<string, unknown>;
  opened = 0;
  closed = 0;
  batches: EmailMessage[][] = [];
  constructor(options: BackendOptions & Record<string, unknown> = {}) {
    super(options);
    this.options = options;
    RecordingBackend.instances.push(this);
  }
  override async open(): Promise<boolean> {
    this.opened++;
    return true;
  }
  override async close(): Promise<void> {
    this.closed++;
  }
  async sendMessages(messages: readonly EmailMessage[]): Promise<number> {
    this.batches.push([...messages]);
    return messages.length;
  }
}

/** Fails delivery the way a real backend does. */
class FailingBackend extends BaseEmailBackend {
  static error: Error = new BackendError("disk on fire");
  async sendMessages(messages: readonly EmailMessage[]): Promise<number> {
    for (const m of messages) await m.prepare();
    if (this.failSilently) return 0;
    throw FailingBackend.error;
  }
}

isolateEmailEnvironment();
beforeAll(() => {
  registerBackend("recording", RecordingBackend);
  registerBackend("failing", FailingBackend);
});
afterAll(() => {
  unregisterBackend("recording");
  unregisterBackend("failing");
  resetSettings();
});
beforeEach(() => {
  resetSettings();
  clearOutbox();
  RecordingBackend.instances = [];
  FailingBackend.error = new BackendError("disk on fire");
  configure({ backend: "memory" });
});
afterEach(() => restoreBackend());

describe("getConnection", () => {
  it("no name: a new instance of the default backend on every call", () => {
    configure({ backend: "recording" });
    const a = getConnection();
    const b = getConnection();
    expect(a).toBeInstanceOf(RecordingBackend);
    expect(a).not.toBe(b);
  });

  it("the default backend is smtp", () => {
    resetSettings();
    expect(getConnection()).toBeInstanceOf(SmtpBackend);
  });

  it("built-in names, a class, registered names; options reach the constructor", () => {
    expect(getConnection("console")).toBeInstanceOf(ConsoleBackend);
    expect(getConnection("memory")).toBeInstanceOf(MemoryBackend);
    expect(getConnection("dummy")).toBeInstanceOf(DummyBackend);
    expect(getConnection("file", { filePath: "/tmp/x" })).toBeInstanceOf(FileBackend);
    expect(getConnection("smtp", { host: "mail.example.com", port: 2525 })).toMatchObject({ host: "mail.example.com", port: 2525 });
    const r = getConnection(RecordingBackend, { failSilently: true, custom: 1 }) as RecordingBackend;
    expect(r.failSilently).toBe(true);
    expect(r.options["custom"]).toBe(1);
    expect(getConnection("recording")).toBeInstanceOf(RecordingBackend);
    expect((getConnection({ failSilently: true }) as MemoryBackend).failSilently).toBe(true);
  });

  it("an unknown name is an InvalidArgumentError; an unknown configured name a ConfigurationError", () => {
    expect(() => getConnection("carrier-pigeon")).toThrow(InvalidArgumentError);
    process.env["EMAIL_BACKEND"] = "not-registered";
    try {
      resetSettings();
      const err = (() => {
        try {
          getConnection();
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(ConfigurationError);
    } finally {
      delete process.env["EMAIL_BACKEND"];
    }
  });

  it("named connections: objects and URLs, not inheriting the top-level connection settings", () => {
    configure({
      backend: "smtp",
      host: "main.example.com",
      username: "main-user",
      password: "main-pass",
      backends: {
        transactional: { backend: "smtp", host: "tx.example.com", port: 2525 },
        bulk: "smtp://bulk-user:bulk%20pass@bulk.example.com:587?tls=starttls",
        archive: "file:///tmp/missive-archive",
        custom: { backend: RecordingBackend, flavour: "vanilla" },
      },
    });
    const tx = getConnection("transactional") as SmtpBackend;
    expect([tx.host, tx.port, tx.username]).toEqual(["tx.example.com", 2525, undefined]);
    const bulk = getConnection("bulk") as SmtpBackend;
    expect([bulk.host, bulk.port, bulk.username, bulk.useTls]).toEqual(["bulk.example.com", 587, "bulk-user", true]);
    expect((getConnection("archive") as FileBackend).filePath).toBe("/tmp/missive-archive");
    expect((getConnection("custom") as RecordingBackend).options["flavour"]).toBe("vanilla");
    // Options of the call win over the named connection's.
    expect((getConnection("transactional", { port: 2626 }) as SmtpBackend).port).toBe(2626);
    // The top-level settings are still the default connection.
    expect((getConnection() as SmtpBackend).username).toBe("main-user");
  });

  it("a `default` named connection replaces the top-level backend", () => {
    configure({ backend: "smtp", backends: { default: "console:" } });
    expect(getConnection()).toBeInstanceOf(ConsoleBackend);
  });
});

describe("sendMail", () => {
  it("sends one message and returns 1", async () => {
    const n = await sendMail({ subject: "Hi", message: "Body", from: "a@example.com", to: ["b@example.com", "c@example.com"] });
    expect(n).toBe(1);
    expect(outbox).toHaveLength(1);
    const m = outbox[0]!;
    expect(m.subject).toBe("Hi");
    expect(m.body).toBe("Body");
    expect(m.from).toBe("a@example.com");
    expect(m.recipients()).toEqual(["b@example.com", "c@example.com"]);
  });

  it("from defaults to defaultFrom; a string `to` is an address list", async () => {
    configure({ defaultFrom: "App <app@example.com>" });
    await sendMail({ subject: "s", message: "m", to: "x@example.com, Y <y@example.com>" });
    expect(outbox[0]!.from).toBe("App <app@example.com>");
    expect(outbox[0]!.recipients()).toEqual(["x@example.com", "y@example.com"]);
  });

  it("html becomes a text/html alternative", async () => {
    await sendMail({ subject: "s", message: "plain", html: "<p>rich</p>", from: "a@example.com", to: ["b@example.com"] });
    const m = outbox[0] as EmailMultiAlternatives;
    expect(m.alternatives).toEqual([{ content: "<p>rich</p>", mimetype: "text/html" }]);
    const bytes = (await m.asBytes()).toString();
    expect(bytes).toContain("multipart/alternative");
  });

  it("authUser/authPassword become the backend's username/password", async () => {
    configure({ backend: "recording" });
    await sendMail({ subject: "s", message: "m", from: "a@example.com", to: ["b@example.com"], authUser: "alice", authPassword: "pw" });
    expect(RecordingBackend.instances[0]!.options).toMatchObject({ username: "alice", password: "pw", failSilently: false });
    const smtp = getConnection("smtp", { username: "alice", password: "pw" }) as SmtpBackend;
    expect(smtp.username).toBe("alice");
  });

  it("uses the connection given", async () => {
    const connection = new RecordingBackend();
    await sendMail({ subject: "s", message: "m", from: "a@example.com", to: ["b@example.com"], connection });
    expect(connection.batches).toHaveLength(1);
    expect(outbox).toHaveLength(0);
  });

  it("no recipients: 0 and nothing sent (Django)", async () => {
    expect(await sendMail({ subject: "s", message: "m", from: "a@example.com", to: [] })).toBe(0);
    expect(outbox).toHaveLength(0);
  });

  it("failSilently turns delivery errors into 0, including on a connection passed in", async () => {
    configure({ backend: "failing" });
    await expect(sendMail({ subject: "s", message: "m", from: "a@example.com", to: ["b@example.com"] })).rejects.toBeInstanceOf(BackendError);
    expect(await sendMail({ subject: "s", message: "m", from: "a@example.com", to: ["b@example.com"], failSilently: true })).toBe(0);
    FailingBackend.error = new SmtpError("550 no", { reply: { code: 550, lines: ["no"], text: "no" } });
    const connection = new FailingBackend();
    expect(await sendMail({ subject: "s", message: "m", from: "a@example.com", to: ["b@example.com"], connection, failSilently: true })).toBe(0);
  });

  it("failSilently never hides programming errors", async () => {
    const base = { message: "m", from: "a@example.com", to: ["b@example.com"], failSilently: true };
    await expect(sendMail({ ...base, subject: "evil\r\nBcc: x@example.com" })).rejects.toBeInstanceOf(BadHeaderError);
    await expect(sendMail({ ...base, subject: "s", to: ["not an address"] })).rejects.toBeInstanceOf(InvalidAddressError);
    configure({ backend: "failing" });
    FailingBackend.error = new InvalidArgumentError("bug");
    await expect(sendMail({ subject: "s", message: "m", from: "a@example.com", to: ["b@example.com"], connection: new FailingBackend() })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(sendMail({ ...base, subject: "s", connection: new FailingBackend() })).rejects.toBeInstanceOf(InvalidArgumentError);
    FailingBackend.error = new ConfigurationError("host", "bad");
    await expect(sendMail({ subject: "s", message: "m", from: "a@example.com", to: ["b@example.com"], connection: new FailingBackend(), failSilently: true })).rejects.toBeInstanceOf(ConfigurationError);
  });
});

describe("sendMassMail", () => {
  it("one connection for every message; returns the count", async () => {
    configure({ backend: "recording" });
    const n = await sendMassMail([
      ["s1", "m1", "a@example.com", ["x@example.com"]],
      ["s2", "m2", null, ["y@example.com"]],
      ["s3", "m3", "c@example.com", "z@example.com"],
    ]);
    expect(n).toBe(3);
    expect(RecordingBackend.instances).toHaveLength(1);
    const conn = RecordingBackend.instances[0]!;
    expect(conn.batches).toHaveLength(1);
    expect(conn.batches[0]!.map((m) => m.subject)).toEqual(["s1", "s2", "s3"]);
    expect(conn.batches[0]![1]!.from).toBe("webmaster@localhost");
  });

  it("empty list: 0; authUser/authPassword and failSilently reach the connection", async () => {
    configure({ backend: "recording" });
    expect(await sendMassMail([])).toBe(0);
    await sendMassMail([["s", "m", "a@example.com", ["b@example.com"]]], { authUser: "u", authPassword: "p", failSilently: true });
    expect(RecordingBackend.instances.at(-1)!.options).toMatchObject({ username: "u", password: "p", failSilently: true });
  });

  it("rejects malformed tuples", async () => {
    await expect(sendMassMail([["s", "m", "a@example.com"]] as never)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("memory backend: all messages in the outbox", async () => {
    expect(await sendMassMail([["a", "1", "a@example.com", ["x@example.com"]], ["b", "2", "a@example.com", ["y@example.com"]]])).toBe(2);
    expect(outbox.map((m) => m.subject)).toEqual(["a", "b"]);
  });
});

describe("mailAdmins / mailManagers", () => {
  it("empty lists: 0 and nothing sent", async () => {
    expect(await mailAdmins("s", "m")).toBe(0);
    expect(await mailManagers("s", "m")).toBe(0);
    expect(outbox).toHaveLength(0);
  });

  it("prefix the subject, send from serverEmail to the list, with optional HTML", async () => {
    configure({
      admins: ["Ann <ann@example.com>", "bob@example.com"],
      managers: ["Carl <carl@example.com>"],
      serverEmail: "server@example.com",
      subjectPrefix: "[site] ",
    });
    expect(await mailAdmins("Broken", "Trace", { html: "<pre>Trace</pre>" })).toBe(1);
    expect(await mailManagers("Report", "Numbers")).toBe(1);
    const [a, m] = outbox;
    expect(a!.subject).toBe("[site] Broken");
    expect(a!.from).toBe("server@example.com");
    expect(a!.recipients()).toEqual(["ann@example.com", "bob@example.com"]);
    expect((a as EmailMultiAlternatives).alternatives[0]!.mimetype).toBe("text/html");
    expect(m!.subject).toBe("[site] Report");
    expect(m!.recipients()).toEqual(["carl@example.com"]);
  });

  it("failSilently and connection", async () => {
    configure({ admins: ["a@example.com"], backend: "failing" });
    await expect(mailAdmins("s", "m")).rejects.toBeInstanceOf(BackendError);
    expect(await mailAdmins("s", "m", { failSilently: true })).toBe(0);
    const connection = new RecordingBackend();
    expect(await mailAdmins("s", "m", { connection })).toBe(1);
    expect(connection.batches).toHaveLength(1);
  });
});

describe("EmailMessage#send and test routing", () => {
  it("a message without a connection uses the default backend", async () => {
    const m = new EmailMessage({ subject: "s", body: "b", from: "a@example.com", to: ["b@example.com"] });
    expect(await m.send()).toBe(1);
    expect(outbox).toHaveLength(1);
    expect(outbox[0]!.subject).toBe("s");
  });

  it("setupTestMail routes the default and named connections to memory, and restores", async () => {
    configure({ backend: "recording", backends: { bulk: { backend: "recording" } } });
    outbox.push(new EmailMessage({ subject: "stale" }));
    const restore = setupTestMail();
    expect(outbox).toHaveLength(0);
    expect(getConnection()).toBeInstanceOf(MemoryBackend);
    expect(getConnection("bulk")).toBeInstanceOf(MemoryBackend);
    // A backend asked for by name is honoured, as in Django.
    expect(getConnection("dummy")).toBeInstanceOf(DummyBackend);
    await sendMail({ subject: "routed", message: "m", from: "a@example.com", to: ["b@example.com"] });
    expect(outbox.map((m) => m.subject)).toEqual(["routed"]);
    restore();
    expect(getConnection()).toBeInstanceOf(RecordingBackend);
    const again = useMemoryBackend();
    expect(getConnection()).toBeInstanceOf(MemoryBackend);
    again();
    expect(getConnection()).toBeInstanceOf(RecordingBackend);
  });

  it("console backend through sendMail writes to its stream", async () => {
    const stream = new PassThrough();
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    const connection = getConnection("console", { stream });
    await sendMail({ subject: "to the console", message: "m", from: "a@example.com", to: ["b@example.com"], connection });
    expect(Buffer.concat(chunks).toString()).toContain("Subject: to the console\r\n");
  });
});
