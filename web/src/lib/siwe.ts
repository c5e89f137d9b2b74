// TEMPORARY stub (branch webui only): the renter logic lands from another branch; drop this file at merge.
export function checkSignIn(_text: string, _opts: { address: string; chainId: number | bigint; king?: string }): void {
  throw new Error("not merged yet");
}
