/**
 * Graceful shutdown: on SIGTERM or SIGINT the server stops taking new work and
 * lets the requests in flight and the job runs finish, up to a grace period;
 * then it cuts what still runs, closes the rest, and the process exits 0. A
 * second signal during the grace period cuts at once.
 *
 * A hand-over (SIGUSR2, sent by the launcher once a new server process
 * listens on the same port: see `supervisor.ts`) first keeps serving for
 * {@link HAND_OVER_MS}, every response closing its connection, then shuts
 * down the same way.
 *
 * @module
 */
import { log } from "./log.ts";

/** The steps of a shutdown, in their order. */
export interface ShutdownSteps {
  /**
   * Stops taking new work (the listener, the job schedules); resolves when
   * the work in flight is done.
   */
  drain(): Promise<unknown>;
  /** Cuts whatever still runs (stops every worker: its requests and job runs fail). */
  cut(): void;
  /** Closes the rest (database processes, the database). */
  close(): Promise<void>;
  /** Makes every response from now on close its connection (`Connection: close`). */
  closeConnections(): void;
}

/**
 * How long a server handing over keeps accepting and serving before it stops
 * accepting. Meanwhile every response closes its connection, so a kept-alive
 * client learns from its next response to open a new connection (which the
 * kernel gives to either process), instead of having its idle connection
 * closed under a request it is sending. A client sending at least once a
 * second moves over without a failed request.
 */
export const HAND_OVER_MS = 1000;

/**
 * A signal this soon after the first is the same one again: Ctrl-C in a
 * terminal signals the whole process group, and the launcher (and `deno task`)
 * forward it too, so the server gets it two or three times within
 * milliseconds. A person pressing Ctrl-C again takes longer.
 */
const ECHO_MS = 500;

/**
 * How long, after the cut, the cut requests get to be answered (503) and the
 * cut job runs to be recorded. A request still sending its body holds no
 * worker and is not waited for.
 */
const CUT_SETTLE_MS = 1000;

function delay(ms: number): { done: Promise<void>; cancel: () => void } {
  let timer: ReturnType<typeof setTimeout>;
  const done = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  return { done, cancel: () => clearTimeout(timer) };
}

/**
 * Shuts down with `steps` on the first SIGTERM or SIGINT, giving the work in
 * flight `graceMs`; resolves once everything is closed, with the exit code:
 * 0, or 1 when a step failed.
 */
export function shutdownOnSignals(graceMs: number, steps: ShutdownSteps): Promise<number> {
  const stopped = Promise.withResolvers<number>();
  const again = Promise.withResolvers<void>();
  let firstAt: number | undefined;

  const shutdown = async (signal: Deno.Signal) => {
    const drained = steps.drain().catch(() => {});
    log.info(
      `${signal}: shutting down: no new connections; waiting up to ${
        graceMs / 1000
      } s for the requests and job runs in flight`,
    );
    const timeout = delay(graceMs);
    const ended = await Promise.race([
      drained.then(() => "drained"),
      timeout.done.then(() => "grace period over"),
      again.promise.then(() => "second signal"),
    ]);
    timeout.cancel();
    if (ended !== "drained") {
      log.warn(`${ended}: stopping the workers; requests and job runs still going are cut`);
      steps.cut();
      const settle = delay(CUT_SETTLE_MS);
      await Promise.race([drained, settle.done]);
      settle.cancel();
    }
    await steps.close();
    log.info("shutdown complete");
    stopped.resolve(0);
  };

  const onSignal = (signal: Deno.Signal) => {
    const now = performance.now();
    if (firstAt === undefined) {
      firstAt = now;
      shutdown(signal).catch((error) => {
        log.error(`shutdown: ${error?.stack ?? error}`);
        stopped.resolve(1);
      });
    } else if (now - firstAt >= ECHO_MS) again.resolve();
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => onSignal(signal));
  }
  let handingOver = false;
  Deno.addSignalListener("SIGUSR2", () => {
    if (handingOver || firstAt !== undefined) return;
    handingOver = true;
    steps.closeConnections();
    log.info(
      `SIGUSR2: handing over to a new server process: serving ${
        HAND_OVER_MS / 1000
      } s more, each response closing its connection`,
    );
    // A stop signal meanwhile shuts down at once; this one then starts nothing.
    setTimeout(() => firstAt === undefined && onSignal("SIGUSR2"), HAND_OVER_MS);
  });
  return stopped.promise;
}
