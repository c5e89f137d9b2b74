// A job's WatchJob events reduced to what the job view shows: the state timeline, the logs, the progress and
// the latest Job. Pure: the view feeds it events in order (a resumed stream may repeat some; they are skipped).
import { JobEventKind, JobState, type Job, type JobEvent } from "./gen/protos/blendr/v1/renter_pb";

export const STEPS = ["queued", "scheduled", "rental_created", "running", "ended", "verified", "settled"] as const;
export type Step = (typeof STEPS)[number];
export type Terminal = "failed" | "cancelled";

export const STEP_LABELS: Record<Step | Terminal, string> = {
  queued: "Queued",
  scheduled: "Scheduled",
  rental_created: "Rental created",
  running: "Running",
  ended: "Ended",
  verified: "Verified",
  settled: "Settled",
  failed: "Failed",
  cancelled: "Cancelled",
};

export interface LogLine {
  seq: bigint;
  ts: number;
  text: string;
}

export interface JobTimeline {
  /** The last event applied (resume WatchJob with after_seq = lastSeq). */
  lastSeq: bigint;
  /** When each step was reached (unix seconds). */
  reached: Partial<Record<Step, number>>;
  terminal?: { kind: Terminal; ts: number; message: string };
  logs: LogLine[];
  /** 0..1, or -1 when unknown. */
  progress: number;
  /** What settlement waits for (the last SETTLING event), "" when nothing. */
  settling: string;
  rescheduled: number;
  output?: { ready: boolean; message: string };
  job?: Job;
  /** The job's state right after the last event. */
  state: JobState;
}

/** At most this many log lines are kept (the oldest go first). */
export const MAX_LOG_LINES = 5000;

export function emptyTimeline(): JobTimeline {
  return { lastSeq: 0n, reached: {}, logs: [], progress: -1, settling: "", rescheduled: 0, state: JobState.UNSPECIFIED };
}

const STEP_OF: Partial<Record<JobEventKind, Step>> = {
  [JobEventKind.QUEUED]: "queued",
  [JobEventKind.SCHEDULED]: "scheduled",
  [JobEventKind.RENTAL_CREATED]: "rental_created",
  [JobEventKind.RUNNING]: "running",
  [JobEventKind.ENDED]: "ended",
  [JobEventKind.VERIFIED]: "verified",
  [JobEventKind.SETTLED]: "settled",
};

/** The timeline after one more event (a new object; events at or before lastSeq leave it unchanged). */
export function applyEvent(tl: JobTimeline, ev: JobEvent): JobTimeline {
  if (ev.seq <= tl.lastSeq) return tl;
  const next: JobTimeline = { ...tl, reached: { ...tl.reached }, lastSeq: ev.seq };
  if (ev.job) {
    next.job = ev.job;
    if (ev.job.progress >= 0) next.progress = clamp01(ev.job.progress);
  }
  if (ev.state !== JobState.UNSPECIFIED) next.state = ev.state;
  const step = STEP_OF[ev.kind];
  if (step) {
    // Reaching a step implies the earlier ones (a resumed stream may start late).
    const idx = STEPS.indexOf(step);
    for (let i = 0; i <= idx; i++) {
      const s = STEPS[i] as Step;
      if (next.reached[s] === undefined) next.reached[s] = ev.tsUnix;
    }
    if (step === "settled") next.settling = "";
  }
  switch (ev.kind) {
    case JobEventKind.LOG:
      next.logs = appendLog(tl.logs, { seq: ev.seq, ts: ev.tsUnix, text: ev.message });
      break;
    case JobEventKind.PROGRESS:
      next.progress = clamp01(ev.progress);
      break;
    case JobEventKind.FAILED:
      next.terminal = { kind: "failed", ts: ev.tsUnix, message: ev.message };
      break;
    case JobEventKind.CANCELLED:
      next.terminal = { kind: "cancelled", ts: ev.tsUnix, message: ev.message };
      break;
    case JobEventKind.RESCHEDULED:
      // Moved off a provider: placement starts again (the earlier rental settles on its own).
      next.rescheduled = tl.rescheduled + 1;
      for (const s of ["scheduled", "rental_created", "running"] as const) delete next.reached[s];
      break;
    case JobEventKind.SETTLING:
      next.settling = ev.message;
      break;
    case JobEventKind.OUTPUT_READY:
      next.output = { ready: true, message: ev.message };
      break;
    case JobEventKind.OUTPUT_FAILED:
      next.output = { ready: false, message: ev.message };
      break;
  }
  return next;
}

function appendLog(logs: LogLine[], line: LogLine): LogLine[] {
  const out = logs.length >= MAX_LOG_LINES ? logs.slice(logs.length - MAX_LOG_LINES + 1) : logs.slice();
  out.push(line);
  return out;
}

function clamp01(x: number): number {
  if (!Number.isFinite(x) || x < 0) return -1;
  return Math.min(1, x);
}

export type StepStatus = "done" | "current" | "pending" | "skipped";

export interface TimelineItem {
  step: Step | Terminal;
  label: string;
  status: StepStatus;
  ts?: number;
}

/** The steps to draw: every regular step done, current (the last reached while the job goes on) or pending;
 * a failed or cancelled job shows the steps it reached, the terminal one, and the later ones skipped except
 * those it still reaches (a cancelled rental still settles). */
export function timelineItems(tl: JobTimeline): TimelineItem[] {
  const last = lastReached(tl);
  const items: TimelineItem[] = [];
  for (const step of STEPS) {
    const ts = tl.reached[step];
    let status: StepStatus;
    if (ts !== undefined) status = step === last && !tl.terminal && step !== "settled" ? "current" : "done";
    else status = tl.terminal ? "skipped" : "pending";
    items.push(ts !== undefined ? { step, label: STEP_LABELS[step], status, ts } : { step, label: STEP_LABELS[step], status });
  }
  if (tl.terminal) {
    // The terminal step goes after the last step the job reached before it.
    const at = items.findIndex((i) => i.ts !== undefined && i.ts > tl.terminal!.ts);
    const item: TimelineItem = { step: tl.terminal.kind, label: STEP_LABELS[tl.terminal.kind], status: "done", ts: tl.terminal.ts };
    if (at < 0) {
      const lastDone = items.map((i) => i.status).lastIndexOf("done");
      items.splice(lastDone + 1, 0, item);
    } else items.splice(at, 0, item);
  }
  return items;
}

function lastReached(tl: JobTimeline): Step | undefined {
  let last: Step | undefined;
  for (const s of STEPS) if (tl.reached[s] !== undefined) last = s;
  return last;
}

/** Whether the job can still change (the stream should be resumed when it drops). */
export function isOpen(tl: JobTimeline): boolean {
  if (tl.reached.settled !== undefined) return false;
  const state = tl.job?.state ?? tl.state;
  return state !== JobState.SETTLED;
}

/** Whether a Cancel makes sense (the job has not ended). */
export function canCancel(state: JobState): boolean {
  return state === JobState.QUEUED || state === JobState.SCHEDULED || state === JobState.RUNNING;
}

export const STATE_NAMES: Record<JobState, string> = {
  [JobState.UNSPECIFIED]: "unknown",
  [JobState.QUEUED]: "queued",
  [JobState.SCHEDULED]: "scheduled",
  [JobState.RUNNING]: "running",
  [JobState.ENDED]: "ended",
  [JobState.SETTLED]: "settled",
  [JobState.FAILED]: "failed",
  [JobState.CANCELLED]: "cancelled",
};

/** A state by its lower-case name ("running"), or undefined. */
export function stateByName(name: string): JobState | undefined {
  for (const [k, v] of Object.entries(STATE_NAMES)) if (v === name) return Number(k) as JobState;
  return undefined;
}
