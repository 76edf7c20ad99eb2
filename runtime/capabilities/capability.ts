/**
 * What every capability is made of (Spin's runtime factors are the model):
 * a description (here), a server side answering its calls and a guest side
 * giving the guest its imports (`sides.ts`). Each capability is one folder
 * beside this file: `mod.ts` (its description and its calls), `host.ts` (the
 * server side, if it has one), `worker.ts` (the guest side), and its stores.
 *
 * @module
 */
import type { Permissions } from "../permissions.ts";

/** A capability as the permission manifest grants it and a component imports it. */
export interface Capability {
  /** Its folder's name. */
  name: string;
  /** The permission manifest's key that grants it. */
  grantKey: keyof Permissions;
  /**
   * What `permissions` grant of it, one entry each (a mode, buckets, hosts,
   * directories, variable names; never a variable's value); empty: nothing.
   */
  grants(permissions: Permissions): readonly string[];
  /**
   * The interfaces its guest side provides (without version); a component
   * that imports the first means to use the capability.
   */
  interfaces: readonly [string, ...string[]];
  /**
   * Whether a component that imports it without the grant gets a log line
   * (not when components import it whether they use it or not).
   */
  logUngranted: boolean;
  /**
   * Its imports that wait (for the server thread or the network): the guest's
   * stack suspends on them (JSPI). Full names, `package/interface@version#function`.
   */
  suspending: readonly string[];
}
