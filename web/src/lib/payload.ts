// TEMPORARY stub (branch webui only): the renter logic lands from another branch; drop this file at merge.
export class PayloadTooLargeError extends Error {
  constructor(public size: number, public limit: number) {
    super("payload too large");
  }
}

export function loadOrCreateOutputKey(_storage: Storage, _address: string): { priv: Uint8Array; pub: Uint8Array } {
  throw new Error("not merged yet");
}
