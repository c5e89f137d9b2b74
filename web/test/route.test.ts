import { describe, expect, it } from "vitest";
import { parseRoute, routeHash, type Route } from "../src/route";

describe("parseRoute", () => {
  it("lands on the offers", () => {
    expect(parseRoute("")).toEqual({ view: "offers" });
    expect(parseRoute("#/")).toEqual({ view: "offers" });
    expect(parseRoute("#/offers")).toEqual({ view: "offers" });
  });

  it("reads each view", () => {
    expect(parseRoute("#/submit")).toEqual({ view: "submit" });
    expect(parseRoute("#/submit?model=h100-sxm")).toEqual({ view: "submit", gpuModel: "h100-sxm" });
    expect(parseRoute("#/jobs")).toEqual({ view: "jobs", states: [] });
    expect(parseRoute("#/jobs?state=running,queued")).toEqual({ view: "jobs", states: ["running", "queued"] });
    expect(parseRoute("#/jobs/job-123")).toEqual({ view: "job", jobId: "job-123" });
    expect(parseRoute("#/jobs/a%2Fb")).toEqual({ view: "job", jobId: "a/b" });
    expect(parseRoute("#/wallet")).toEqual({ view: "wallet" });
    expect(parseRoute("#/network")).toEqual({ view: "network" });
  });

  it("sends unknown paths to not found", () => {
    expect(parseRoute("#/nope")).toEqual({ view: "notfound", path: "/nope" });
    expect(parseRoute("#/jobs/a/b")).toEqual({ view: "notfound", path: "/jobs/a/b" });
    expect(parseRoute("#/wallet/x")).toEqual({ view: "notfound", path: "/wallet/x" });
  });

  it("keeps a malformed escape as it is", () => {
    expect(parseRoute("#/jobs/%E0%A4")).toEqual({ view: "job", jobId: "%E0%A4" });
  });

  it("is the inverse of routeHash", () => {
    const routes: Route[] = [
      { view: "offers" },
      { view: "submit" },
      { view: "submit", gpuModel: "a100 80gb" },
      { view: "jobs", states: [] },
      { view: "jobs", states: ["failed", "cancelled"] },
      { view: "job", jobId: "j/1 x" },
      { view: "wallet" },
      { view: "network" },
    ];
    for (const r of routes) expect(parseRoute(routeHash(r))).toEqual(r);
  });
});
