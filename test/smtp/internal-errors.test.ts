/**
 * A bug in missive itself is a plain Error: not an SmtpError, so `failSilently` never turns
 * it into a quiet 0 and nothing claims that retrying would help.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { startFakeServer, type FakeSmtpServer } from "../helpers/fake-smtp-server.js";
import { SmtpClient } from "../../src/smtp/client.js";
import { SmtpConnection } from "../../src/smtp/connection.js";
import { isDeliveryError } from "../../src/backends/output.js";
import { MissiveError } from "../../src/errors.js";

// BDAT chunks that end without a LAST chunk: only a bug in data-stream.ts could do this.
vi.mock("../../src/smtp/data-stream.js", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../../src/smtp/data-stream.js")>();
  return {
    ...actual,
    // eslint-disable-next-line require-yield
    bdatChunks: async function* () {
      return;
    },
  };
});

const servers: FakeSmtpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe("internal errors are not delivery errors", () => {
  it("asking for the greeting twice (the funnel's misuse): a plain Error, not an SmtpError", async () => {
    const server = await startFakeServer({ greeting: null });
    servers.push(server);
    const conn = await SmtpConnection.open({ host: "127.0.0.1", port: server.port, timeoutMs: 2000 });
    const greeting = { display: "<greeting>", expect: [220], phase: "greeting", deadline: 2000 } as const;
    const first = conn.submit(greeting).catch((e: unknown) => e);
    const second = await conn.submit(greeting).catch((e: unknown) => e);
    expect(second).toBeInstanceOf(Error);
    expect(second).not.toBeInstanceOf(MissiveError);
    expect(isDeliveryError(second)).toBe(false);
    conn.destroy();
    await first;
  });

  it("BDAT chunks ending without LAST: a plain Error, the client closed", async () => {
    const server = await startFakeServer({ ehlo: ["PIPELINING", "CHUNKING", "8BITMIME"] });
    servers.push(server);
    const client = new SmtpClient({ host: "127.0.0.1", port: server.port, timeout: 2000, localName: "client.test", chunking: true });
    const error = await client.sendMail({ from: "a@example.org", to: ["b@example.org"] }, "x").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/without LAST/);
    expect(error).not.toBeInstanceOf(MissiveError);
    expect(isDeliveryError(error)).toBe(false);
    expect(client.state).toBe("closed");
  });
});
