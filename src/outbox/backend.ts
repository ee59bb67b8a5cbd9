/**
 * The "outbox" backend: `sendMail` and friends enqueue instead of sending.
 *
 *   configure({ backend: "outbox", outbox: { store: "file:///var/spool/missive", deliver: "failover" } });
 *   await sendMail({ ... });   // 1: durably queued; `missive worker` delivers it
 *
 * A message counts as sent once it is durable in the outbox, as a relay's "250 queued as
 * ID" does: its report is "sent" with `queueId` the outbox id. A store that cannot take
 * it (a spool that is not writable, a message over the size limit) is a BackendError,
 * which `failSilently` may hide like any delivery failure.
 */
import { registerBackendClass } from "../backend-registry.js";
import { BaseEmailBackend, reportEach, type BackendOptions } from "../backends/base.js";
import { acceptedReport, type SendOptions, type SendReport } from "../backends/report.js";
import { BackendError, ConfigurationError, OutboxError } from "../errors.js";
import type { EmailMessage } from "../mime/message.js";
import { freeze } from "../mime/render.js";
import { systemClock } from "../observe/clock.js";
import { getSettings } from "../settings.js";
import { Outbox, type EnqueueOptions } from "./outbox.js";
import type { OutboxStore } from "./store.js";

export interface OutboxBackendOptions extends BackendOptions {
  /** The store; default: the `outbox` setting's. */
  readonly store?: string | OutboxStore | undefined;
  /** Options for every message enqueued through this backend (a priority, a route). */
  readonly enqueue?: Pick<EnqueueOptions, "route" | "priority"> | undefined;
}

/** One Outbox per store, shared by every connection made to it. */
const outboxes = new Map<string | OutboxStore, Outbox>();

export function outboxFor(store: string | OutboxStore): Outbox {
  let outbox = outboxes.get(store);
  if (outbox === undefined) {
    outbox = new Outbox({ store });
    outboxes.set(store, outbox);
  }
  return outbox;
}

export class OutboxBackend extends BaseEmailBackend {
  /** Tells a worker that this backend enqueues (so that it is never given one to deliver with). */
  readonly enqueuesIntoOutbox = true;
  readonly outbox: Outbox;
  readonly #enqueue: Pick<EnqueueOptions, "route" | "priority">;

  constructor(options: OutboxBackendOptions = {}) {
    super(options);
    const store = (Object.hasOwn(options, "store") ? options.store : undefined) ?? getSettings().outbox?.store;
    if (store === undefined) throw new ConfigurationError("outbox", 'The outbox backend needs a store: configure({ outbox: { store: "file:///var/spool/missive" } })');
    this.outbox = outboxFor(store);
    this.#enqueue = { ...(Object.hasOwn(options, "enqueue") ? options.enqueue : {}) };
  }

  async sendMessages(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<number> {
    return (await this.sendMessagesWithReport(messages, options)).sent;
  }

  override async sendMessagesWithReport(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<SendReport> {
    return reportEach(this, messages, options, { skipWithoutRecipients: true }, async (message, recipients) => {
      const at = systemClock.now();
      let id: string;
      try {
        ({ id } = await this.outbox.enqueue(message, this.#enqueue));
      } catch (error) {
        if (error instanceof OutboxError) throw new BackendError(`The outbox could not take the message: ${error.message}`, { cause: error });
        throw error;
      }
      return { ...acceptedReport(message, (await freeze(message)).messageId, recipients, at), queueId: id };
    });
  }

  toJSON(): Record<string, unknown> {
    return { backend: "outbox", store: String(this.outbox.store) };
  }
}

registerBackendClass("outbox", OutboxBackend);
