/**
 * The README's "Delivery that keeps arriving" example, run as written against loopback
 * servers in place of the example hosts: two routes, a retry policy, a circuit, a rate
 * limit on the bulk relay and routing by message kind.
 */
import { afterEach, describe, expect, it } from "vitest";
import { deliver, sendMail } from "../../src/index.js";
import { configure, resetSettings } from "../../src/settings.js";
import { closeServers, deadPort, fake } from "./helpers.js";

afterEach(async () => {
  resetSettings();
  await closeServers();
});

describe("the README example", () => {
  it("configures, sends with sendMail and deliver, and routes bulk mail to the rate-limited relay", async () => {
    const secondary = await fake();
    const relay = await fake();
    const local = { localName: "app.test" };
    configure({
      backends: {
        primary: { backend: "smtp", host: "127.0.0.1", port: await deadPort(), ...local },
        secondary: { backend: "smtp", host: "127.0.0.1", port: secondary.port, ...local },
        bulk: { backend: "smtp", host: "127.0.0.1", port: relay.port, rateLimit: { messages: 50, perSeconds: 1 }, ...local },
      },
      backend: "failover",
      failover: {
        routes: ["primary", "secondary"],
        retry: { attempts: 5, initialDelay: 1_000, factor: 2, maxDelay: 60_000, jitter: "full", deadline: 600_000 },
        circuit: { failures: 5, cooldown: 30_000 },
      },
      route: (message) => (message.headers["X-Mail-Kind"] === "bulk" ? "bulk" : undefined),
    });

    expect(await sendMail({ subject: "Your code", message: "123456", from: "app@example.com", to: ["zoe@example.org"] })).toBe(1);
    const report = await deliver({ subject: "Your code", message: "123456", from: "app@example.com", to: ["zoe@example.org"] });
    expect(report).toMatchObject({ status: "sent", route: "secondary", accepted: ["zoe@example.org"], stopped: "delivered" });
    expect(report.attempts.map((a) => a.route)).toEqual(["primary", "secondary"]);

    const news = await deliver({ subject: "News", message: "…", from: "news@example.com", to: ["zoe@example.org"], headers: { "X-Mail-Kind": "bulk" } });
    expect([news.status, news.route]).toEqual(["sent", "bulk"]);
    expect(secondary.received).toHaveLength(2);
    expect(relay.received).toHaveLength(1);
  });
});
