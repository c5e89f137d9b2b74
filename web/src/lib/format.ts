// TEMPORARY stub (branch webui only): the renter logic lands from another branch; drop this file at merge.
export function formatTokens(_wei: bigint | string, _decimals?: number): string {
  throw new Error("not merged yet");
}
export function parseTokens(_text: string): bigint {
  throw new Error("not merged yet");
}
export function formatDuration(_seconds: number): string {
  throw new Error("not merged yet");
}
export function formatBytes(_n: number | bigint): string {
  throw new Error("not merged yet");
}
