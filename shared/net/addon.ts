// The xenemu_net addon (shared/native/tap.cc), loaded on first use: only
// hosts with an uplink and the commands that make namespaces need it.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export interface NetAddon {
  tapOpen(name: string): [number, string];
  pollStart(fd: number, cb: (frame: Buffer | null, errno?: number) => void): unknown;
  pollStop(handle: unknown): void;
  write(fd: number, buf: Uint8Array): number;
  close(fd: number): void;
  netnsEnter(path: string): number;
  netnsRestore(oldFd: number): void;
}

let addon: NetAddon | null = null;

export function netAddon(): NetAddon {
  if (!addon) {
    // dist/shared/net/addon.js -> <root>/shared/native/build/Release
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
    addon = createRequire(import.meta.url)(join(root, 'shared', 'native', 'build', 'Release', 'xenemu_net.node')) as NetAddon;
  }
  return addon;
}
