// Hash routing: "#/offers", "#/submit", "#/jobs", "#/jobs/<id>", "#/wallet", "#/network".

export type Route =
  | { view: "offers" }
  | { view: "submit"; gpuModel?: string }
  | { view: "jobs"; states: string[] }
  | { view: "job"; jobId: string }
  | { view: "wallet" }
  | { view: "network" }
  | { view: "notfound"; path: string };

/** The route of a location hash ("" and "#/" are the offers, the landing view). */
export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, "");
  const [pathPart = "", query = ""] = raw.split("?", 2);
  const parts = pathPart.split("/").filter((p) => p !== "").map(safeDecode);
  const params = new URLSearchParams(query);
  const [first, second, ...rest] = parts;
  if (first === undefined || (first === "offers" && second === undefined)) return { view: "offers" };
  if (rest.length === 0) {
    if (first === "submit" && second === undefined) {
      const model = params.get("model");
      return model ? { view: "submit", gpuModel: model } : { view: "submit" };
    }
    if (first === "jobs" && second === undefined) {
      const states = (params.get("state") ?? "").split(",").filter((x) => x !== "");
      return { view: "jobs", states };
    }
    if (first === "jobs" && second !== undefined && second !== "") return { view: "job", jobId: second };
    if (first === "wallet" && second === undefined) return { view: "wallet" };
    if (first === "network" && second === undefined) return { view: "network" };
  }
  return { view: "notfound", path: "/" + parts.join("/") };
}

/** The hash of a route (the inverse of parseRoute). */
export function routeHash(route: Route): string {
  switch (route.view) {
    case "offers":
      return "#/offers";
    case "submit":
      return route.gpuModel ? `#/submit?model=${encodeURIComponent(route.gpuModel)}` : "#/submit";
    case "jobs":
      return route.states.length ? `#/jobs?state=${route.states.map(encodeURIComponent).join(",")}` : "#/jobs";
    case "job":
      return `#/jobs/${encodeURIComponent(route.jobId)}`;
    case "wallet":
      return "#/wallet";
    case "network":
      return "#/network";
    case "notfound":
      return "#" + route.path;
  }
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
