/**
 * The backends an outbox worker delivers with when it was given none: the `outbox.deliver`
 * setting (a named connection or a backend name), and for a message enqueued with `route`,
 * the named connection of that name.
 */
import type { EmailBackend } from "../backends/base.js";
import { lookupBackend } from "../backends/registry.js";
import { isNamedConnection, namedConnection } from "../delivery/named.js";
import { ConfigurationError, InvalidArgumentError } from "../errors.js";
import { getSettings } from "../settings.js";

/** The backend named `name` (a named connection first, then a backend name), or the `outbox.deliver` setting's. */
export function deliveryBackend(name?: string): EmailBackend {
  const deliver = name ?? getSettings().outbox?.deliver;
  if (deliver === undefined) {
    throw new InvalidArgumentError('The outbox worker needs the backend that delivers: worker({ backend: getConnection("failover") }), or configure({ outbox: { store, deliver: "failover" } })');
  }
  if (deliver === "outbox") throw new InvalidArgumentError('The outbox worker cannot deliver with the "outbox" backend (it would enqueue each message again)');
  if (isNamedConnection(deliver)) return namedConnection(deliver);
  const cls = lookupBackend(deliver);
  if (cls === undefined) throw new ConfigurationError("outbox.deliver", `outbox.deliver names "${deliver}", which is neither a named connection nor a backend`);
  return new cls();
}

/** The backend of a message enqueued with `route`: the named connection of that name. */
export function routeBackend(name: string): EmailBackend {
  if (!isNamedConnection(name)) throw new ConfigurationError("backends", `The message was enqueued with route "${name}", which is not a named connection here`);
  return namedConnection(name);
}
