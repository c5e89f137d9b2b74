// TEMPORARY stub (branch webui only): the renter logic (branch weblib) lands here; drop this file at merge.
export interface OutputKey {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

export function loadOrCreateOutputKey(_storage: Storage, _renter: string): OutputKey {
  throw new Error("not merged yet");
}
