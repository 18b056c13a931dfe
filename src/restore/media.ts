// Restores from removable media (tapes): which media a chain needs, and whether the drive holds the first
// one, checked before anything on the disk is destroyed.
import type { Manifest } from '../catalog/manifest.js';
import type { Target } from '../target/target.js';

/** The distinct media a chain is on, in the order they are read ([] for dumps on disks and shares). */
export function mediaOf(chain: Manifest[]): string[] {
  return [...new Set(chain.flatMap((m) => (m.medium ? [m.medium.label] : [])))];
}

/** Rejects with a WrongMediumError (naming the tape to insert) unless the drive holds the chain's first dump. */
export async function checkFirstMedium(target: Target, chain: Manifest[], signal?: AbortSignal): Promise<void> {
  if (target.device && chain.length) await target.device.prepareRead(chain[0]!, { signal });
}
