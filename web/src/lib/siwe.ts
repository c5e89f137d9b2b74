// TEMPORARY stub (branch webui only): the renter logic (branch weblib) lands here; drop this file at merge.
export interface SignInExpectation {
  address: string;
  chainId: number | bigint;
  domain?: string;
  king?: string;
  now?: number;
}

export function checkSignIn(_text: string, _expect: SignInExpectation): unknown {
  throw new Error("not merged yet");
}
