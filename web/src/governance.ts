// Voting through the browser's wallet (EIP-1193): the checks read the Governor with the wallet's eth_call, the
// vote is a castVote transaction the wallet fills (gas, nonce, fees), signs and sends, and its receipt is read
// through the same provider (wallets proxy read calls to their node). The page has no RPC of its own.
import { createClient, custom, parseEventLogs, type Hex } from "viem";
import { readContract, waitForTransactionReceipt, writeContract } from "viem/actions";
import { GOVERNOR_ABI, SUPPORT, VoteRevertedError, type GovernorReads, type Support } from "./lib/vote";
import { NoWalletError } from "./errors";
import { injectedProvider, type ConnectedWallet } from "./wallet";

const POLL_MS = 1_000;
const RECEIPT_TIMEOUT_MS = 180_000;

/** A vote the chain recorded (from the transaction's VoteCast event). */
export interface RecordedVote {
  support: number;
  weight: bigint;
  block: bigint;
}

function client() {
  const eth = injectedProvider();
  if (!eth) throw new NoWalletError();
  return createClient({ transport: custom(eth), pollingInterval: POLL_MS });
}

/** The Governor at `address`, read through the browser's wallet. */
export function governorReads(address: Hex): GovernorReads {
  const c = client();
  return {
    state: async (proposalId) => Number(await readContract(c, { address, abi: GOVERNOR_ABI, functionName: "state", args: [proposalId] })),
    hasVoted: (proposalId, account) => readContract(c, { address, abi: GOVERNOR_ABI, functionName: "hasVoted", args: [proposalId, account] }),
    getVotes: (account, timepoint) => readContract(c, { address, abi: GOVERNOR_ABI, functionName: "getVotes", args: [account, timepoint] }),
  };
}

/** Sends castVote(proposalId, support) from the browser's wallet; the transaction hash once the wallet sent it. */
export async function sendVote(w: ConnectedWallet, governance: Hex, proposalId: bigint, support: Support): Promise<Hex> {
  if (w.kind !== "injected") throw new NoWalletError();
  return writeContract(client(), {
    address: governance,
    abi: GOVERNOR_ABI,
    functionName: "castVote",
    args: [proposalId, SUPPORT[support]],
    account: w.address,
    chain: null, // the page checked the wallet's chain already (checkChain); the wallet fills the rest
  });
}

/** Waits for the vote's receipt (through the wallet) and reads the vote it recorded.
 *
 * @throws VoteRevertedError when the transaction reverted.
 */
export async function voteRecorded(tx: Hex): Promise<RecordedVote> {
  const receipt = await waitForTransactionReceipt(client(), { hash: tx, pollingInterval: POLL_MS, timeout: RECEIPT_TIMEOUT_MS });
  if (receipt.status !== "success") throw new VoteRevertedError(tx);
  const [cast] = parseEventLogs({ abi: GOVERNOR_ABI, eventName: "VoteCast", logs: receipt.logs });
  if (!cast) throw new VoteRevertedError(tx);
  return { support: cast.args.support, weight: cast.args.weight, block: receipt.blockNumber };
}
