// The WAL capture (postgres+wal://): each run stores the cluster's WAL from
// where the chain's guard slot stands to the server's flush position when the
// run began, partial segment included, one record per file under /wal/, then
// /manifest.json saying what the range is. Scheduled beside base backups
// (postgres+bin://), the captures let a cluster be recovered to any moment
// they cover. Why the slots move only in close(), and only after a run that
// handed on every file: src/physical/wal_slots.ts.

// @ts-types="@types/pg"
import type pg from "pg";
import type { ImportEntry, ImporterConnector, InitParams } from "../kloset/connector.ts";
import { manifestEntry, PHYSICAL_POLICY, physicalInfo } from "./info.ts";
import { connectExplained } from "../pg/client.ts";
import { parseWalCaptureConfig, type WalCaptureOptions } from "../pg/config.ts";
import type { PemFiles } from "../pg/pem_files.ts";
import { prepareConnection } from "../pg/prepare.ts";
import { toolEnv, ToolError, toolPath } from "../pg/tools.ts";
import { configuredTool, type ToolChoice } from "../pg/tool_search.ts";
import { ServerError } from "../pg/errors.ts";
import { PluginError } from "../errors.ts";
import { warn } from "../log.ts";
import { Runtime } from "../proc/runtime.ts";
import { replicationProblems, serverFacts, versionProblem } from "./requirements.ts";
import { identifySystem, openReplication, timelineHistory } from "./replication.ts";
import { parseHistory, timelineOf } from "./timeline_history.ts";
import { receiveWal, type WalFile } from "./wal_receiver.ts";
import { segmentHeaderProblem } from "./wal_header.ts";
import { formatLsn, parseLsn, parseSegmentFileName, segmentStart } from "./wal_names.ts";
import {
  advanceSlots,
  createGuard,
  dropSlots,
  lockChain,
  readSlots,
  type SlotPair,
  slotPair,
  type SlotState,
} from "./wal_slots.ts";

export async function createWalImporter(
  params: InitParams,
  runtime: Runtime = new Runtime(),
): Promise<ImporterConnector> {
  const opts = parseWalCaptureConfig(params.config);
  const pem = await prepareConnection(opts);
  return new WalImporter(opts, pem, runtime);
}

/** Where a capture starts, and whether it begins a chain. */
interface Start {
  lsn: bigint;
  chainStart: boolean;
}

/** What a capture learnt of the server when it began. */
interface ServerState {
  systemIdentifier: bigint;
  timeline: number;
  flushLsn: bigint;
  segmentSize: number;
  serverVersion: string;
  serverVersionNum: number;
}

class WalImporter implements ImporterConnector {
  readonly #opts: WalCaptureOptions;
  readonly #pem: PemFiles;
  readonly #runtime: Runtime;
  readonly #pair: SlotPair;
  readonly #started = new Date();
  #tool: ToolChoice | undefined;
  /** The catalog session holding the chain's advisory lock while a capture runs. */
  #session: pg.Client | undefined;
  #spool: string | undefined;
  /** The end of a capture that handed on every file; the slots move past it in close(). */
  #completedEnd: bigint | undefined;
  /** Whether the chain had its pending mark when the capture began. */
  #hasMark = false;
  /** Files handed on and not read to their end yet. */
  #unread = 0;
  /** Failures of a file's content (a bad header, a read cancelled, a file never opened). */
  readonly #failures: unknown[] = [];

  constructor(opts: WalCaptureOptions, pem: PemFiles, runtime: Runtime) {
    this.#opts = opts;
    this.#pem = pem;
    this.#runtime = runtime;
    this.#pair = slotPair(opts.slot);
  }

  info() {
    return physicalInfo(this.#opts.conn.host, "postgresql+wal");
  }

  policy() {
    return PHYSICAL_POLICY;
  }

  #where(): string {
    return `${this.#opts.conn.host}:${this.#opts.conn.port}`;
  }

  /** Refuses, naming what to change, what would make captures fail. */
  async #preflight(client: pg.Client): Promise<{ versionLine: string }> {
    const tool = this.#tool = await configuredTool("pg_receivewal", this.#opts.pgBinDir);
    const facts = await serverFacts(client);
    const problems = replicationProblems(facts);
    const v = versionProblem(tool.major, tool.versionLine, facts.serverVersionNum);
    if (v) problems.unshift(v);
    if (facts.serverVersionNum < 130000) {
      problems.push("WAL capture needs PostgreSQL 13 or newer (slot WAL status)");
    }
    if (problems.length) {
      throw new ServerError(`cannot capture the WAL of ${this.#where()}: ${problems.join("; ")}`, {
        kind: "failed-precondition",
      });
    }
    return { versionLine: tool.versionLine };
  }

  async ping(): Promise<void> {
    const client = await connectExplained(this.#opts.conn, "postgres");
    try {
      await this.#preflight(client);
      const slots = await readSlots(client, this.#pair);
      const problem = chainProblem(slots, this.#pair);
      if (problem) {
        const next = problem.recreate
          ? "; the next capture fails, saying so, and starts a new chain: take a new base backup after it"
          : "";
        throw new PluginError("failed-precondition", `${problem.message}${next}`);
      }
      const needed = (slots.guard ? 0 : 1) + (slots.pending ? 0 : 1);
      if (needed > 0) await this.#checkFreeSlots(client, needed);
      if (slots.guard) await this.#warnRetained(client, slots.guard);
    } finally {
      await client.end().catch(() => {});
    }
    const repl = await openReplication(this.#opts.conn);
    await repl.end().catch(() => {});
  }

  async #checkFreeSlots(client: pg.Client, needed: number): Promise<void> {
    const r = await client.query<{ free: number; max: number }>(
      `SELECT current_setting('max_replication_slots')::int AS max,
              current_setting('max_replication_slots')::int - count(*)::int AS free
         FROM pg_catalog.pg_replication_slots`,
    );
    const { free, max } = r.rows[0];
    if (free < needed) {
      throw new PluginError(
        "failed-precondition",
        `cannot capture the WAL of ${this.#where()}: the chain needs ${needed} more replication slot(s) (${this.#pair.guard}, ${this.#pair.pending}) and ${free} of max_replication_slots = ${max} are free: raise max_replication_slots and restart the server`,
      );
    }
  }

  /** Warns, with figures, when the guard keeps more WAL than warn_retained_wal. */
  async #warnRetained(client: pg.Client, guard: SlotState): Promise<void> {
    if (guard.restartLsn === undefined) return;
    const r = await client.query<{ lsn: string; keep: string }>(
      // A standby has no flush position of its own: what it received stands in.
      `SELECT (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_receive_lsn()
                    ELSE pg_catalog.pg_current_wal_flush_lsn() END)::text AS lsn,
              current_setting('max_slot_wal_keep_size') AS keep`,
    );
    const held = Number(parseLsn(r.rows[0].lsn) - guard.restartLsn);
    if (held <= this.#opts.warnRetainedWal) return;
    warn(
      `slot ${this.#pair.guard} keeps ${mib(held)} of WAL on ${this.#where()} (warn_retained_wal: ${
        mib(this.#opts.warnRetainedWal)
      }; max_slot_wal_keep_size: ${
        r.rows[0].keep
      }): run captures more often, or, if captures have stopped for good, drop the slots ${this.#pair.guard} and ${this.#pair.pending}`,
    );
  }

  async *entries(signal: AbortSignal): AsyncIterable<ImportEntry> {
    const session = this.#session = await connectExplained(this.#opts.conn, "postgres");
    const { versionLine } = await this.#preflight(session);
    if (!await lockChain(session, this.#pair)) {
      throw new PluginError(
        "aborted",
        `another capture of slot ${this.#pair.guard} on ${this.#where()} is running: captures of one chain run one at a time; let it end, or space the schedule further apart`,
      );
    }
    const start = await this.#start(session);
    const { server, startTli } = await this.#serverState(session, start.lsn);
    const spool = this.#spool = await Deno.makeTempDir({
      dir: this.#opts.spoolDir,
      prefix: "plakar-pg-wal-",
    });
    const files: string[] = [];
    const received = receiveWal({
      bin: toolPath(this.#tool?.execDir, "pg_receivewal"),
      conn: this.#opts.conn,
      env: await toolEnv(this.#opts.conn),
      dir: spool,
      start: start.lsn,
      tli: startTli,
      end: server.flushLsn,
      segmentSize: server.segmentSize,
      spec: { runtime: this.#runtime, signal, secrets: [this.#opts.conn.password] },
    });
    for await (const file of chainChecked(received)) {
      signal.throwIfAborted();
      files.push(file.name);
      this.#unread++;
      yield await this.#entry(file, server);
    }
    // pg_receivewal also ends with status 0 when a signal stops it early.
    signal.throwIfAborted();
    const gap = rangeGap(files, start.lsn, server.flushLsn, server.segmentSize);
    if (gap) throw new PluginError("data-loss", `pg_receivewal ${gap}: the capture is incomplete`);
    yield this.#manifestEntry({
      start,
      server,
      startTli,
      files,
      versionLine,
    });
    // Every file was handed on; close() moves the slots once plakar has
    // read them all (a file still unread then means the run did not end).
    this.#completedEnd = server.flushLsn;
  }

  /** Where this capture starts: the guard's position, or a new chain's first. */
  async #start(session: pg.Client): Promise<Start> {
    const slots = await readSlots(session, this.#pair);
    const problem = chainProblem(slots, this.#pair);
    if (problem?.recreate) {
      await dropSlots(session, this.#pair);
      const at = await createGuard(session, this.#pair);
      throw new PluginError(
        "data-loss",
        `${problem.message}; the slot was created again at ${
          formatLsn(at)
        }, so later captures form a new chain: take a new base backup (plakar backup postgres+bin://...) now, earlier ones can no longer be recovered past this point`,
      );
    }
    if (problem) throw new PluginError("failed-precondition", problem.message);
    this.#hasMark = slots.pending !== undefined;
    if (slots.guard) {
      await this.#warnRetained(session, slots.guard);
      return { lsn: slots.guard.restartLsn!, chainStart: !this.#hasMark };
    }
    const at = await createGuard(session, this.#pair);
    warn(
      `created the replication slot ${this.#pair.guard} on ${this.#where()}: WAL is captured from ${
        formatLsn(at)
      } on, and a base backup (postgres+bin://) taken from now on can be recovered to any moment the captures cover; if captures of this cluster ran before (another server after a failover, a slot dropped with its pair), their chain ends here: take a new base backup now`,
    );
    return { lsn: at, chainStart: true };
  }

  /** The server's state, and the timeline `start` is on, over one replication connection. */
  async #serverState(
    session: pg.Client,
    start: bigint,
  ): Promise<{ server: ServerState; startTli: number }> {
    const repl = await openReplication(this.#opts.conn);
    try {
      const id = await identifySystem(repl);
      const r = await session.query<{ seg: string; v: string; n: string }>(
        `SELECT (SELECT setting FROM pg_catalog.pg_settings WHERE name = 'wal_segment_size') AS seg,
                current_setting('server_version') AS v,
                current_setting('server_version_num') AS n`,
      );
      const row = r.rows[0];
      const server: ServerState = {
        systemIdentifier: id.systemIdentifier,
        timeline: id.timeline,
        flushLsn: id.flushLsn,
        // pg_settings gives it in bytes.
        segmentSize: Number(row.seg),
        serverVersion: row.v,
        serverVersionNum: Number(row.n),
      };
      return { server, startTli: await timelineAt(repl, start, id.timeline) };
    } finally {
      await repl.end().catch(() => {});
    }
  }

  /** One received file as a record; its header is checked as it is read. */
  async #entry(file: WalFile, server: ServerState): Promise<ImportEntry> {
    const onDone = () => this.#unread--;
    const onFailure = (e: unknown) => this.#failures.push(e);
    const stat = await Deno.stat(file.path);
    const segment = parseSegmentFileName(file.name, server.segmentSize);
    const expect = segment && {
      start: segmentStart(segment.segno, server.segmentSize),
      tli: segment.tli,
      systemIdentifier: server.systemIdentifier,
      segmentSize: server.segmentSize,
    };
    return {
      pathname: `/wal/${file.name}`,
      fileInfo: {
        name: file.name,
        size: stat.size,
        mode: 0o600,
        modTime: stat.mtime ?? new Date(),
      },
      open: () => checkedFile(file, expect, onDone, onFailure),
      release: async () => {
        onFailure(new Error(`${file.name} was not read`));
        await Deno.remove(file.path).catch(() => {});
      },
    };
  }

  #manifestEntry(c: {
    start: Start;
    server: ServerState;
    startTli: number;
    files: string[];
    versionLine: string;
  }): ImportEntry {
    const manifest = {
      version: 1,
      connector: "postgresql+wal",
      created_at: this.#started.toISOString(),
      cluster_system_identifier: String(c.server.systemIdentifier),
      server_version: c.server.serverVersion,
      server_version_num: c.server.serverVersionNum,
      pg_receivewal_version: c.versionLine,
      wal_segment_size: c.server.segmentSize,
      slot: this.#pair.guard,
      chain_start: c.start.chainStart,
      start_lsn: formatLsn(c.start.lsn),
      start_timeline: c.startTli,
      end_lsn: formatLsn(c.server.flushLsn),
      end_timeline: c.server.timeline,
      files: c.files,
    };
    const bytes = new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n");
    return manifestEntry(bytes, this.#started);
  }

  async close(): Promise<void> {
    try {
      const complete = this.#unread === 0 && this.#failures.length === 0;
      if (this.#session && this.#completedEnd !== undefined && complete) {
        await advanceSlots(this.#session, this.#pair, this.#completedEnd, this.#hasMark);
      }
    } finally {
      // Ending the session releases the chain's advisory lock.
      await this.#session?.end().catch(() => {});
      if (this.#spool) await Deno.remove(this.#spool, { recursive: true }).catch(() => {});
      await this.#pem.remove();
    }
  }
}

/** The timeline `lsn` is on: the current one, or an ancestor named in its history. */
async function timelineAt(repl: pg.Client, lsn: bigint, current: number): Promise<number> {
  if (current === 1) return 1;
  const { content } = await timelineHistory(repl, current);
  return timelineOf(lsn, current, parseHistory(new TextDecoder().decode(content)));
}

/**
 * Why the chain cannot go on; `recreate` when a new one must start. The
 * guard is what keeps the WAL: a chain whose guard is gone or invalidated is
 * broken. A missing pending mark only means the chain's first capture has
 * not ended yet.
 */
function chainProblem(
  slots: { guard?: SlotState; pending?: SlotState },
  pair: SlotPair,
): { message: string; recreate: boolean } | undefined {
  const { guard, pending } = slots;
  for (const s of [guard, pending]) {
    if (s && s.slotType !== "physical") {
      return {
        message:
          `slot ${pair.guard} or ${pair.pending} exists and is not a physical slot: choose another slot=`,
        recreate: false,
      };
    }
  }
  if (!guard && pending) {
    return {
      message: `the chain's slot ${pair.guard} was dropped, so WAL the chain needed may be gone`,
      recreate: true,
    };
  }
  if (guard && (guard.restartLsn === undefined || guard.walStatus === "lost")) {
    return {
      message:
        `slot ${pair.guard} was invalidated and the server removed WAL the chain needed (max_slot_wal_keep_size was reached: captures ran too far apart, or stopped)`,
      recreate: true,
    };
  }
  return undefined;
}

/**
 * The received files; a range the server no longer has (pg_receivewal's
 * "requested WAL segment has already been removed") is said as the broken
 * chain it is.
 */
async function* chainChecked(files: AsyncIterable<WalFile>): AsyncGenerator<WalFile> {
  try {
    yield* files;
  } catch (e) {
    if (!(e instanceof ToolError) || e.kind !== "data-loss") throw e;
    throw new PluginError(
      "data-loss",
      `the server no longer has WAL the chain needs (${e.message}): the chain is broken; take a new base backup (plakar backup postgres+bin://...) now`,
      { cause: e },
    );
  }
}

/**
 * What is missing from the received files for the range start..end: every
 * segment from the one holding `start` to the one holding the last byte
 * before `end` must be there, on whichever timeline.
 */
export function rangeGap(
  names: string[],
  start: bigint,
  end: bigint,
  segmentSize: number,
): string | undefined {
  const have = new Set<bigint>();
  for (const name of names) {
    const s = parseSegmentFileName(name, segmentSize);
    if (s) have.add(s.segno);
  }
  const last = end > start ? (end - 1n) / BigInt(segmentSize) : start / BigInt(segmentSize);
  for (let seg = start / BigInt(segmentSize); seg <= last; seg++) {
    if (!have.has(seg)) {
      return `stopped before segment ${seg} (position ${
        formatLsn(seg * BigInt(segmentSize))
      }) of the range ${formatLsn(start)} to ${formatLsn(end)}`;
    }
  }
  return undefined;
}

/** A file's content, its first page checked before anything of it is handed on; removed once read. */
function checkedFile(
  file: WalFile,
  expect: Parameters<typeof segmentHeaderProblem>[1] | undefined,
  onDone: () => void,
  onFailure: (e: unknown) => void,
): ReadableStream<Uint8Array> {
  let f: Deno.FsFile | undefined;
  let checked = expect === undefined;
  return new ReadableStream<Uint8Array>({
    async start() {
      f = await Deno.open(file.path, { read: true });
    },
    async pull(controller) {
      try {
        const buf = new Uint8Array(1024 * 1024);
        const n = await f!.read(buf);
        if (n === null) {
          f!.close();
          await Deno.remove(file.path).catch(() => {});
          onDone();
          controller.close();
          return;
        }
        if (!checked) {
          const problem = segmentHeaderProblem(
            buf.subarray(0, n),
            expect!,
          );
          if (problem) {
            throw new PluginError(
              "data-loss",
              `WAL file ${file.name} is not what its name says: ${problem}`,
            );
          }
          checked = true;
        }
        controller.enqueue(buf.subarray(0, n));
      } catch (e) {
        onFailure(e);
        f?.close();
        controller.error(e);
      }
    },
    cancel() {
      onFailure(new Error(`reading ${file.name} was cancelled`));
      f?.close();
    },
  });
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MiB`;
}
