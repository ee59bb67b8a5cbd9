/**
 * Routing: `configure({ route: (message) => name | undefined })` picks a named connection
 * per message — password resets through the transactional provider, newsletters through
 * the bulk relay — and undefined keeps the default backend. The default connection is then
 * a `RoutingBackend`: it asks `route` once per message, sends each group through its
 * connection (in the order the groups first appear), and puts the reports back in input
 * order, each with its route. `sendMail`, `sendMassMail`, `EmailMessage#send` and
 * `deliver` all go through it.
 */
import { ConfigurationError } from "../errors.js";
import { BaseEmailBackend, sendWithReport, type BackendOptions, type EmailBackend } from "../backends/base.js";
import { attachReports, countsAsSent, reportsOf, type DeliveryReport, type SendOptions, type SendReport } from "../backends/report.js";
import type { EmailMessage } from "../mime/message.js";

export interface RoutingBackendOptions extends BackendOptions {
  /** The name of the connection for a message, or undefined for the default. */
  route: (message: EmailMessage) => string | undefined;
  /** Makes the connection of a name (undefined: the default backend). */
  connect: (name: string | undefined) => EmailBackend;
  /** Whether a name is a connection `connect` can make (checked before anything is sent). */
  exists: (name: string) => boolean;
}

export class RoutingBackend extends BaseEmailBackend {
  readonly #route: RoutingBackendOptions["route"];
  readonly #connect: RoutingBackendOptions["connect"];
  readonly #exists: RoutingBackendOptions["exists"];
  /** Connections made while open, kept to close(). */
  readonly #connections = new Map<string | undefined, EmailBackend>();
  #open = false;

  constructor(options: RoutingBackendOptions) {
    super(options);
    this.#route = options.route;
    this.#connect = options.connect;
    this.#exists = options.exists;
  }

  /** The route for `message`: a checked name, or undefined for the default. */
  routeOf(message: EmailMessage): string | undefined {
    const name = this.#route(message);
    if (name === undefined) return undefined;
    if (typeof name !== "string" || !this.#exists(name)) {
      throw new ConfigurationError("route", `route() returned ${JSON.stringify(name)}, which is not a named connection; return a name from backends, or undefined for the default`);
    }
    return name;
  }

  override async open(): Promise<boolean> {
    if (this.#open) return false;
    this.#open = true;
    return true;
  }

  override async close(): Promise<void> {
    this.#open = false;
    const connections = [...this.#connections.values()];
    this.#connections.clear();
    await Promise.all(connections.map((c) => c.close().catch(() => undefined)));
  }

  async sendMessages(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<number> {
    return (await this.sendMessagesWithReport(messages, options)).sent;
  }

  override async sendMessagesWithReport(messages: readonly EmailMessage[], options: SendOptions = {}): Promise<SendReport> {
    // Every route is decided (and checked) before anything is sent.
    const groups = new Map<string | undefined, number[]>();
    messages.forEach((message, i) => {
      const name = this.routeOf(message);
      const group = groups.get(name);
      if (group === undefined) groups.set(name, [i]);
      else group.push(i);
    });
    const results: (DeliveryReport | undefined)[] = new Array<DeliveryReport | undefined>(messages.length).fill(undefined);
    const known = () => results.filter((r): r is DeliveryReport => r !== undefined);
    for (const [name, indexes] of groups) {
      const connection = this.#connectionFor(name);
      const place = (reports: readonly DeliveryReport[]) => {
        reports.forEach((report, k) => (results[indexes[k]!] = name === undefined || report.route !== undefined ? report : { ...report, route: name }));
      };
      try {
        const sendOptions = { ...options, ...(name !== undefined ? { route: name } : {}), stopOnError: this.failSilently ? false : options.stopOnError };
        place((await sendWithReport(connection, indexes.map((i) => messages[i]!), sendOptions)).reports);
      } catch (error) {
        place(reportsOf(error) ?? []);
        throw attachReports(error, known());
      } finally {
        if (!this.#open) {
          this.#connections.delete(name);
          await connection.close().catch(() => undefined);
        }
      }
    }
    const reports = known();
    return { sent: reports.filter(countsAsSent).length, reports };
  }

  #connectionFor(name: string | undefined): EmailBackend {
    let connection = this.#connections.get(name);
    if (connection === undefined) {
      connection = this.#connect(name);
      this.#connections.set(name, connection);
    }
    return connection;
  }
}
