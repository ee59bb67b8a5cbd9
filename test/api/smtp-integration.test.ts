import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { getConnection, mailAdmins, sendMail, sendMassMail } from "../../src/api.js";
import { SmtpAuthError, SmtpConnectError } from "../../src/errors.js";
import { configure, resetSettings } from "../../src/settings.js";
import { startAiosmtpd, type AiosmtpdServer } from "../helpers/aiosmtpd.js";
import { startFakeServer } from "../helpers/fake-smtp-server.js";
import { isolateEmailEnvironment } from "../helpers/email-env.js";

isolateEmailEnvironment();
let server: AiosmtpdServer;
beforeAll(async () => {
  server = await startAiosmtpd({ auth: { users: { alice: "wonder land" }, allowPlaintext: true } });
});
afterAll(async () => {
  await server?.stop();
});
let before = 0;
beforeEach(async () => {
  resetSettings();
  configure({ host: server.host, port: server.port, timeout: 10_000 });
  before = (await server.messages()).length;
});
const newMessages = async (n: number) => (await server.waitForMessages(before + n)).slice(before);

describe("the API over a real SMTP server", () => {
  it("sendMail delivers, with authUser/authPassword as the SMTP login", async () => {
    const n = await sendMail({ subject: "Hi", message: "Body", html: "<b>Body</b>", from: "a@example.com", to: ["b@example.com"], authUser: "alice", authPassword: "wonder land" });
    expect(n).toBe(1);
    const [m] = await newMessages(1);
    expect(m!.authUser).toBe("alice");
    expect(m!.rcptTos).toEqual(["b@example.com"]);
    expect(m!.data.toString()).toContain("text/html");
  });

  it("a wrong password is an SmtpAuthError, hidden by failSilently", async () => {
    const msg = { subject: "s", message: "m", from: "a@example.com", to: ["b@example.com"], authUser: "alice", authPassword: "wrong" };
    await expect(sendMail(msg)).rejects.toBeInstanceOf(SmtpAuthError);
    expect(await sendMail({ ...msg, failSilently: true })).toBe(0);
  });

  it("sendMassMail uses one connection for all its messages", async () => {
    const n = await sendMassMail([
      ["one", "1", "a@example.com", ["x@example.com"]],
      ["two", "2", "a@example.com", ["y@example.com"]],
      ["three", "3", null, ["z@example.com"]],
    ]);
    expect(n).toBe(3);
    const stored = await newMessages(3);
    expect(new Set(stored.map((m) => m.peer![1])).size).toBe(1);
    expect(stored.map((m) => m.rcptTos[0])).toEqual(["x@example.com", "y@example.com", "z@example.com"]);
  });

  it("sendMassMail over a fake server: one connection, one QUIT", async () => {
    const fake = await startFakeServer();
    try {
      configure({ host: fake.host, port: fake.port });
      expect(await sendMassMail([["a", "1", "a@example.com", ["x@example.com"]], ["b", "2", "a@example.com", ["y@example.com"]]])).toBe(2);
      expect(fake.connections).toBe(1);
      expect(fake.commands().filter((c) => c === "QUIT")).toHaveLength(1);
    } finally {
      await fake.close();
    }
  });

  it("a connection passed to sendMassMail that is open stays open", async () => {
    const connection = getConnection();
    expect(await connection.open()).toBe(true);
    try {
      expect(await sendMassMail([["a", "1", "a@example.com", ["x@example.com"]]], { connection })).toBe(1);
      expect(await sendMail({ subject: "b", message: "2", from: "a@example.com", to: ["y@example.com"], connection })).toBe(1);
    } finally {
      await connection.close();
    }
    const stored = await newMessages(2);
    expect(stored[0]!.peer![1]).toBe(stored[1]!.peer![1]);
  });

  it("mailAdmins delivers to the admins", async () => {
    configure({ admins: ["Ann <ann@example.com>"], serverEmail: "server@example.com" });
    expect(await mailAdmins("Oops", "trace")).toBe(1);
    const [m] = await newMessages(1);
    expect(m!.mailFrom).toBe("server@example.com");
    expect(m!.data.toString()).toContain("Subject: [missive] Oops");
  });

  it("an unreachable server: SmtpConnectError, or 0 with failSilently", async () => {
    const fake = await startFakeServer();
    const port = fake.port;
    await fake.close();
    configure({ host: "127.0.0.1", port, timeout: 2_000 });
    const msg = { subject: "s", message: "m", from: "a@example.com", to: ["b@example.com"] };
    await expect(sendMail(msg)).rejects.toBeInstanceOf(SmtpConnectError);
    expect(await sendMail({ ...msg, failSilently: true })).toBe(0);
  });
});
