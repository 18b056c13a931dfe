// Maps a configured target to its implementation (like restic's location registry). Implementations
// are loaded lazily so that a command that needs no target pays nothing for them.
import type { TargetConfig } from '../config/types.js';
import type { Target } from './target.js';

export async function openTarget(cfg: TargetConfig): Promise<Target> {
  switch (cfg.kind) {
    case 'file': {
      const { FileTarget } = await import('./file.js');
      return new FileTarget(cfg.dir);
    }
    case 'smb': {
      const { SmbTarget } = await import('./smb.js');
      return new SmbTarget(cfg);
    }
    case 'tape': {
      const { TapeTarget } = await import('./tape.js');
      return new TapeTarget(cfg);
    }
  }
}
