// TEMPORARY stub (branch webui only): the renter logic (branch weblib) lands here; drop this file at merge.
export function formatTokens(_wei: bigint | string, _decimals = 18, _places = 6): string {
  throw new Error("not merged yet");
}
export function parseTokens(_amount: string | number | bigint, _what = "amount", _decimals = 18): bigint {
  throw new Error("not merged yet");
}
export function formatDuration(_seconds: number): string {
  throw new Error("not merged yet");
}
export function formatBytes(_n: number): string {
  throw new Error("not merged yet");
}
