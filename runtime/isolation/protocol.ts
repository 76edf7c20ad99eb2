/**
 * Messages between the server thread and a component's worker.
 *
 * @module
 */

/** What a worker needs to run one compiled component. */
export interface WorkerInit {
  type: "init";
  name: string;
  /** `file:` URL of jco's generated `component.js`. */
  glueUrl: string;
  /** Directory holding the core `.wasm` modules next to the glue. */
  coreDir: string;
  /** Environment variables granted to the component. */
  env: [string, string][];
  /** Instances kept for reuse when idle. */
  maxIdleInstances: number;
  /** JSON sent to `init-endpoint.get-manifest`. */
  manifestArgs: string;
}

/** A request for the component's `incoming-handler`. */
export interface WorkerRequest {
  type: "request";
  id: number;
  method: string;
  url: string;
  headers: [string, string][];
  body: Uint8Array | null;
}

/** The server no longer wants the answer to request `id`. */
export interface WorkerCancel {
  type: "cancel";
  id: number;
}

/** Server thread to worker. */
export type ToWorker = WorkerInit | WorkerRequest | WorkerCancel;

/** Worker to server thread. */
export type FromWorker =
  | { type: "ready"; manifest: string; ms: number }
  | { type: "init-failed"; error: string }
  | { type: "head"; id: number; status: number; headers: [string, string][] }
  | { type: "chunk"; id: number; bytes: Uint8Array }
  | { type: "end"; id: number }
  | { type: "failed"; id: number; error: string; detail: string };
