// #/submit: the job form. "Get quote" (signed in: the King quotes renters only) shows the price, the most the
// escrow locks and the candidates (or why nothing fits, with the closest offers) before any typed data is signed; "Sign and submit" packs, encrypts and
// signs with the wallet (buildSubmission), submits, and opens the job.
import { authed, renter } from "../api";
import { isArchive, unpackArchive } from "../archive";
import { h, mount } from "../dom";
import { InputError, MaxPriceError } from "../errors";
import { parseEnv, parseGpus, parseHours, pathInFolder, pricedOut } from "../forms";
import type { Offer, Quote } from "../gen/protos/blendr/v1/renter_pb";
import { formatDuration, parseTokens } from "../lib/format";
import { loadOrCreateOutputKey } from "../lib/payload";
import { NoProviderError } from "../lib/errors";
import { buildSubmission, randomRequestId } from "../lib/submit";
import type { Route } from "../route";
import { fixes, needWallet } from "../session";
import { app, bytes, clearError, markReady, offersMini, perGpuHour, showError, tok } from "../ui";

/** The renter's spec (as the renter logic takes it: seconds and wei). */
interface Spec {
  gpus: number;
  gpuModel: string;
  minVramBytes: bigint;
  minTflops: number;
  durationS: number;
  maxPricePerGpuHour: bigint;
}

/** The spec on the wire (uint64 seconds, wei as a decimal string). */
function specProto(s: Spec) {
  return { ...s, durationS: BigInt(s.durationS), maxPricePerGpuHour: s.maxPricePerGpuHour.toString() };
}

function specKey(s: Spec): string {
  return [s.gpus, s.gpuModel, s.minVramBytes, s.minTflops, s.durationS, s.maxPricePerGpuHour].join("|");
}

function field(id: string, label: string, control: HTMLElement, hint?: string): HTMLElement {
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("small", { id: `${id}-hint`, class: "muted" }, hint) : null);
}

export function renderSubmit(el: HTMLElement, route: Route): () => void {
  const wanted = route.view === "submit" ? route.gpuModel ?? "" : "";
  const name = h("input", { id: "s-name", testid: "submit-name", placeholder: "my training run", maxlength: "120" });
  const entrypoint = h("input", { id: "s-entry", testid: "submit-entrypoint", required: true, placeholder: "python train.py", "aria-describedby": "s-entry-hint" });
  const folder = h("input", { id: "s-folder", type: "file", testid: "submit-folder", webkitdirectory: true, multiple: true, "aria-describedby": "s-folder-hint" });
  const archive = h("input", { id: "s-archive", type: "file", testid: "submit-archive", accept: ".zip,.tar,.tar.gz,.tgz" });
  const env = h("textarea", { id: "s-env", testid: "submit-env", rows: "3", placeholder: "EPOCHS=10\nDATASET=/data", spellcheck: "false" });
  const gpus = h("input", { id: "s-gpus", type: "number", min: "1", step: "1", value: "1", testid: "submit-gpus", required: true });
  const model = h("select", { id: "s-model", testid: "submit-gpu-model" }, h("option", { value: "" }, "Any model"));
  const hours = h("input", { id: "s-hours", type: "number", min: "0.02", step: "0.25", value: "1", testid: "submit-hours", required: true });
  const maxPrice = h("input", { id: "s-max", inputmode: "decimal", testid: "submit-max-price", required: true, placeholder: "3.0", "aria-describedby": "s-max-hint" });
  const quoteBtn = h("button", { type: "button", testid: "get-quote" }, "Get quote");
  const submitBtn = h("button", { type: "submit", testid: "sign-submit", disabled: true }, "Sign and submit");
  const quoteBox = h("section", { testid: "quote", class: "quote", "aria-live": "polite", hidden: true });
  const progress = h("p", { testid: "submit-progress", class: "progress-text", "aria-live": "polite" });
  const folderInfo = h("small", { testid: "submit-files", class: "muted" });
  const form = h(
    "form",
    { testid: "submit-form", class: "form", novalidate: true },
    field("s-name", "Name (optional)", name),
    field("s-entry", "Entrypoint", entrypoint, "The command run in the working directory, e.g. python train.py"),
    h(
      "fieldset",
      null,
      h("legend", null, "Working directory"),
      field("s-folder", "A folder", folder, "Everything in it is packed, encrypted to the provider and sent with the job."),
      field("s-archive", "or an archive file (.tar, .tar.gz, .tgz, .zip), unpacked as the working directory", archive),
      folderInfo,
    ),
    field("s-env", "Environment (KEY=VALUE per line)", env),
    h(
      "div",
      { class: "grid" },
      field("s-gpus", "GPUs", gpus),
      field("s-model", "GPU model", model),
      field("s-hours", "Hours", hours),
      field("s-max", `Max price (${app.info?.tokenSymbol || "GPUTOKEN"} per GPU-hour)`, maxPrice, "The most you pay per GPU-hour; the job waits if the network asks more."),
    ),
    h("div", { class: "row" }, quoteBtn, submitBtn),
    quoteBox,
    progress,
  );
  mount(el, h("h1", null, "Submit a job"), form);

  let live = true;
  let offers: Offer[] = [];
  let quoted: { key: string; quote: Quote } | null = null;
  // One request id per submission: a retry after a lost answer is the same job (SubmitJob is idempotent).
  let pending: { key: string; requestId: string } | null = null;

  void renter.listOffers({}).then(
    (res) => {
      if (!live) return;
      offers = res.offers;
      for (const o of offers) {
        model.append(h("option", { value: o.gpuModel, selected: o.gpuModel === wanted }, `${o.gpuModel} (${o.gpusFree} / ${o.gpusTotal} GPUs free)`));
      }
      markReady();
      const pick = offers.find((o) => o.gpuModel === wanted) ?? offers[0];
      if (pick && !maxPrice.value && pick.quotePerGpuHour) maxPrice.placeholder = `quote now: ${perGpuHour(pick.quotePerGpuHour)}`;
    },
    (e) => live && showError(e),
  );

  const files = (): File[] => {
    const picked = folder.files && folder.files.length ? folder.files : archive.files;
    return picked ? [...picked] : [];
  };
  const showFiles = () => {
    const list = files();
    const size = list.reduce((n, f) => n + f.size, 0);
    folderInfo.textContent = list.length ? `${list.length} file${list.length === 1 ? "" : "s"}, ${bytes(size)} before packing` : "";
  };
  folder.addEventListener("change", () => {
    if (folder.files?.length) archive.value = "";
    showFiles();
  });
  archive.addEventListener("change", () => {
    if (archive.files?.length) folder.value = "";
    showFiles();
  });

  /** The working directory's files: the picked folder's, or the archive's contents. */
  const workingDirectory = async (): Promise<{ path: string; data: Uint8Array; mode?: number }[]> => {
    if (folder.files && folder.files.length > 0) {
      return Promise.all([...folder.files].map(async (f) => ({ path: pathInFolder(f.webkitRelativePath || f.name), data: new Uint8Array(await f.arrayBuffer()) })));
    }
    const file = archive.files?.[0];
    if (!file) return [];
    if (!isArchive(file.name)) throw new InputError("archive", `${file.name} is not a .tar, .tar.gz, .tgz or .zip archive.`);
    progress.textContent = `Unpacking ${file.name}…`;
    return unpackArchive(file.name, new Uint8Array(await file.arrayBuffer()));
  };

  const readSpec = (): Spec => {
    const maxText = maxPrice.value.trim();
    if (!maxText) throw new InputError("max-price", "Enter the most you pay per GPU-hour.");
    // parseTokens refuses a negative or non-number amount with words that name the field.
    const max = parseTokens(maxText, "the max price per GPU-hour");
    return { gpus: parseGpus(gpus.value), gpuModel: model.value, minVramBytes: 0n, minTflops: 0, durationS: parseHours(hours.value), maxPricePerGpuHour: max };
  };

  /** The offers for the spec's model (all of them for any model), cheapest quote first. */
  const closestTo = (spec: Spec): Offer[] =>
    offers
      .filter((o) => !spec.gpuModel || o.gpuModel === spec.gpuModel)
      .sort((x, y) => (BigInt(x.quotePerGpuHour || "0") < BigInt(y.quotePerGpuHour || "0") ? -1 : 1));

  const invalidate = () => {
    submitBtn.disabled = true;
    quoteBox.hidden = true;
    quoted = null;
  };
  for (const c of [gpus, model, hours, maxPrice]) c.addEventListener("input", invalidate);

  const getQuote = async (): Promise<Quote | null> => {
    clearError();
    const spec = readSpec();
    // GetQuote is a signed-in call (the King answers renters it knows): connect and sign in first. Sign-in is
    // EIP-4361 text that moves no money; the typed data (intents, permit) waits for "Sign and submit".
    const { w, info } = await needWallet();
    progress.textContent = "Asking the King for a quote (sign in if your wallet asks)…";
    const quote = await authed(w, info, () => renter.getQuote({ spec: specProto(spec) }));
    if (!live) return null;
    progress.textContent = "";
    quoted = { key: specKey(spec), quote };
    showQuote(quoteBox, quote, spec);
    const fits = quote.candidates.length > 0 && spec.maxPricePerGpuHour >= BigInt(quote.pricePerGpuHour || "0");
    submitBtn.disabled = !fits;
    const unfit = whyUnfit(quote, spec);
    if (unfit) showError(unfit);
    return quote;
  };

  /** Why the quote cannot take this job (the max price, or no provider), or null when it can. */
  const whyUnfit = (quote: Quote, spec: Spec): Error | null => {
    if (quote.candidates.length === 0) {
      // Providers of this model with GPUs free that ask more than the max: the price is what to change.
      const priced = pricedOut(quote.closest.length ? quote.closest : offers, spec);
      const first = priced[0];
      if (first) return new MaxPriceError(spec.maxPricePerGpuHour, BigInt(first.quotePerGpuHour || first.minAskPerGpuHour), priced);
      return new NoProviderError(quote.reason || "no provider fits", quote.closest);
    }
    if (spec.maxPricePerGpuHour < BigInt(quote.pricePerGpuHour || "0")) {
      return new MaxPriceError(spec.maxPricePerGpuHour, BigInt(quote.pricePerGpuHour), closestTo(spec));
    }
    return null;
  };

  quoteBtn.addEventListener("click", async () => {
    quoteBtn.disabled = true;
    try {
      await getQuote();
    } catch (e) {
      progress.textContent = "";
      showError(e, fixes(e));
    } finally {
      quoteBtn.disabled = false;
    }
  });

  const submit = async () => {
    clearError();
    const spec = readSpec();
    const key = specKey(spec);
    if (!entrypoint.value.trim()) throw new InputError("entrypoint", "Enter the entrypoint: the command that runs the job.");
    const envVars = parseEnv(env.value);
    if (!quoted || quoted.key !== key) {
      // The form changed since the quote: show the new quote first; signing waits for a second click.
      await getQuote();
      if (quoted && !submitBtn.disabled) progress.textContent = "Here is the quote for this form: check it, then sign and submit.";
      return;
    }
    const quote = quoted.quote;
    const unfit = whyUnfit(quote, spec);
    if (unfit) throw unfit;
    const { w, info } = await needWallet();
    progress.textContent = "Reading your wallet (sign in if your wallet asks)…";
    const walletState = await authed(w, info, () => renter.getWallet({}));
    progress.textContent = "Reading the working directory…";
    const list = await workingDirectory();
    if (!pending || pending.key !== key) pending = { key, requestId: randomRequestId() };
    const outputKey = loadOrCreateOutputKey(localStorage, w.address);
    progress.textContent = "Packing and encrypting, then signing: check the rental intents and the permit in your wallet…";
    const request = await buildSubmission({
      quote,
      wallet: walletState,
      spec,
      name: name.value.trim(),
      requestId: pending.requestId,
      entrypoint: entrypoint.value.trim(),
      env: envVars,
      files: list,
      outputKeyPub: outputKey.pub,
      signer: { address: w.address, signTypedData: (td) => w.signTypedData(td) },
      maxPayloadBytes: Number(info.maxPayloadBytes),
    });
    progress.textContent = "Submitting to the King…";
    const job = await authed(w, info, () => renter.submitJob(request));
    pending = null;
    progress.textContent = "Submitted.";
    if (live) location.hash = `#/jobs/${encodeURIComponent(job.jobId)}`;
  };

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submitBtn.disabled = true;
    quoteBtn.disabled = true;
    try {
      await submit();
    } catch (e) {
      progress.textContent = "";
      showError(e, fixes(e));
    } finally {
      quoteBtn.disabled = false;
      submitBtn.disabled = !quoted || quoted.quote.candidates.length === 0;
    }
  });

  return () => {
    live = false;
  };
}

function showQuote(box: HTMLElement, quote: Quote, spec: Spec): void {
  box.hidden = false;
  mount(
    box,
    h("h2", null, "Quote"),
    h(
      "dl",
      { class: "kv" },
      h("dt", null, "Price now"),
      h("dd", { testid: "quote-price" }, perGpuHour(quote.pricePerGpuHour)),
      h("dt", null, "Most locked in escrow"),
      h("dd", { testid: "quote-max-escrow" }, `${tok(quote.maxEscrow)} (${spec.gpus} GPU × ${formatDuration(spec.durationS)} at your max price)`),
      h("dt", null, "Candidate providers"),
      h("dd", { testid: "quote-candidates" }, `${quote.candidates.length} provider${quote.candidates.length === 1 ? "" : "s"}`),
    ),
    quote.reason ? h("p", { testid: "quote-reason" }, quote.reason) : null,
    quote.closest.length ? [h("h3", null, "Closest offers"), offersMini(quote.closest)] : null,
  );
}
