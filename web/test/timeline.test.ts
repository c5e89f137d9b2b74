import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { JobEventKind, JobEventSchema, JobSchema, JobState, type JobEvent } from "../src/gen/protos/blendr/v1/renter_pb";
import { applyEvent, canCancel, emptyTimeline, MAX_LOG_LINES, stateByName, timelineItems, type JobTimeline } from "../src/timeline";

let seq = 0n;
function ev(kind: JobEventKind, extra: Partial<{ message: string; progress: number; state: JobState; ts: number }> = {}): JobEvent {
  seq += 1n;
  return create(JobEventSchema, {
    jobId: "j1",
    seq,
    kind,
    tsUnix: extra.ts ?? Number(seq) * 10,
    message: extra.message ?? "",
    progress: extra.progress ?? 0,
    state: extra.state ?? JobState.UNSPECIFIED,
  });
}

function run(events: JobEvent[]): JobTimeline {
  return events.reduce(applyEvent, emptyTimeline());
}

function statuses(tl: JobTimeline): string[] {
  return timelineItems(tl).map((i) => `${i.step}:${i.status}`);
}

describe("applyEvent", () => {
  it("follows a rental to its settlement", () => {
    seq = 0n;
    const tl = run([
      ev(JobEventKind.QUEUED),
      ev(JobEventKind.SCHEDULED),
      ev(JobEventKind.RENTAL_CREATED),
      ev(JobEventKind.RUNNING, { state: JobState.RUNNING }),
    ]);
    expect(tl.lastSeq).toBe(4n);
    expect(tl.state).toBe(JobState.RUNNING);
    expect(statuses(tl)).toEqual([
      "queued:done",
      "scheduled:done",
      "rental_created:done",
      "running:current",
      "ended:pending",
      "verified:pending",
      "settled:pending",
    ]);
    const done = [ev(JobEventKind.ENDED), ev(JobEventKind.SETTLING, { message: "bridge attestations 1/2" })].reduce(applyEvent, tl);
    expect(done.settling).toBe("bridge attestations 1/2");
    const settled = [ev(JobEventKind.VERIFIED), ev(JobEventKind.SETTLED)].reduce(applyEvent, done);
    expect(settled.settling).toBe("");
    expect(statuses(settled).every((s) => s.endsWith(":done"))).toBe(true);
  });

  it("skips events it already applied (a resumed stream)", () => {
    seq = 0n;
    const a = ev(JobEventKind.QUEUED);
    const b = ev(JobEventKind.LOG, { message: "hello" });
    const tl = run([a, b, b, a]);
    expect(tl.logs.map((l) => l.text)).toEqual(["hello"]);
    expect(tl.lastSeq).toBe(2n);
  });

  it("fills earlier steps when a stream starts late", () => {
    seq = 5n;
    const tl = run([ev(JobEventKind.RUNNING, { ts: 100 })]);
    expect(tl.reached).toMatchObject({ queued: 100, scheduled: 100, rental_created: 100, running: 100 });
  });

  it("keeps the progress in 0..1 and unknown when negative", () => {
    seq = 0n;
    expect(run([ev(JobEventKind.PROGRESS, { progress: 0.25 })]).progress).toBe(0.25);
    expect(run([ev(JobEventKind.PROGRESS, { progress: 1.5 })]).progress).toBe(1);
    expect(run([ev(JobEventKind.PROGRESS, { progress: -1 })]).progress).toBe(-1);
  });

  it("shows a failure after the last step reached and skips the rest", () => {
    seq = 0n;
    const tl = run([ev(JobEventKind.QUEUED), ev(JobEventKind.FAILED, { message: "no provider in 600 s" })]);
    expect(tl.terminal).toMatchObject({ kind: "failed", message: "no provider in 600 s" });
    expect(statuses(tl)).toEqual([
      "queued:done",
      "failed:done",
      "scheduled:skipped",
      "rental_created:skipped",
      "running:skipped",
      "ended:skipped",
      "verified:skipped",
      "settled:skipped",
    ]);
  });

  it("puts a cancel before the settlement that follows it", () => {
    seq = 0n;
    const tl = run([
      ev(JobEventKind.QUEUED),
      ev(JobEventKind.SCHEDULED),
      ev(JobEventKind.RENTAL_CREATED),
      ev(JobEventKind.RUNNING),
      ev(JobEventKind.CANCELLED),
      ev(JobEventKind.SETTLED),
    ]);
    const steps = timelineItems(tl).map((i) => i.step);
    expect(steps.indexOf("cancelled")).toBeLessThan(steps.indexOf("ended"));
    expect(timelineItems(tl).find((i) => i.step === "settled")?.status).toBe("done");
  });

  it("starts placement again when rescheduled", () => {
    seq = 0n;
    const tl = run([
      ev(JobEventKind.QUEUED),
      ev(JobEventKind.SCHEDULED),
      ev(JobEventKind.RENTAL_CREATED),
      ev(JobEventKind.RUNNING),
      ev(JobEventKind.RESCHEDULED, { message: "provider vanished" }),
    ]);
    expect(tl.rescheduled).toBe(1);
    expect(tl.reached.running).toBeUndefined();
    expect(tl.reached.queued).toBeDefined();
  });

  it("keeps the latest job and the output state", () => {
    seq = 0n;
    const job = create(JobSchema, { jobId: "j1", state: JobState.ENDED });
    const e = ev(JobEventKind.OUTPUT_READY, { message: "3 MiB" });
    e.job = job;
    const tl = run([e]);
    expect(tl.job?.state).toBe(JobState.ENDED);
    expect(tl.output).toEqual({ ready: true, message: "3 MiB" });
  });

  it("bounds the logs", () => {
    seq = 0n;
    let tl = emptyTimeline();
    for (let i = 0; i < MAX_LOG_LINES + 10; i++) tl = applyEvent(tl, ev(JobEventKind.LOG, { message: `line ${i}` }));
    expect(tl.logs.length).toBe(MAX_LOG_LINES);
    expect(tl.logs[tl.logs.length - 1]?.text).toBe(`line ${MAX_LOG_LINES + 9}`);
    expect(tl.logs[0]?.text).toBe("line 10");
  });
});

describe("states", () => {
  it("allows Cancel only before the job ended", () => {
    expect(canCancel(JobState.QUEUED)).toBe(true);
    expect(canCancel(JobState.RUNNING)).toBe(true);
    expect(canCancel(JobState.ENDED)).toBe(false);
    expect(canCancel(JobState.SETTLED)).toBe(false);
  });

  it("names states both ways", () => {
    expect(stateByName("running")).toBe(JobState.RUNNING);
    expect(stateByName("nope")).toBeUndefined();
  });
});
