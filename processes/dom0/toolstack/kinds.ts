// The kinds of guest the toolstack builds, one entry each (libxl_domain_type
// to its builder, as libxl__domain_build() switches). A new kind is a new
// module implementing GuestKind (guest_kind.ts) and one line here; a type
// with no entry (PVH today) is refused at create with xl's kind of message.
import type { DomainConfig, DomainType } from '../../../shared/toolstack/xlcfg.js';
import { BuildError } from './builder.js';
import type { Guest, GuestContext, GuestKind, RestoreFrom } from './guest_kind.js';
import { PV_GUEST } from './pv_kind.js';
import { HVM_GUEST } from './hvm/hvm_kind.js';

type KindTable = { [T in DomainType]?: GuestKind<Extract<DomainConfig, { type: T }>> };

export const GUEST_KINDS: KindTable = {
  pv: PV_GUEST,
  hvm: HVM_GUEST,
};

/** The kind that builds `config`; each entry is keyed by the type of config it takes. */
function kindOf(config: DomainConfig): GuestKind | undefined {
  return GUEST_KINDS[config.type] as GuestKind | undefined;
}

/** Why xl would refuse `config` before creating anything, or undefined. */
export function refuseGuest(config: DomainConfig): string | undefined {
  const kind = kindOf(config);
  if (!kind) return `domain "${config.name}": type ${config.type} guests are not supported yet (${Object.keys(GUEST_KINDS).join(', ')} are)`;
  return kind.refuse?.(config);
}

/** Builds `config` with its kind's builder, paused (guest_kind.ts). */
export function createGuest(ctx: GuestContext, config: DomainConfig, name: string, restore?: RestoreFrom): Promise<Guest> {
  const kind = kindOf(config);
  if (!kind) throw new BuildError('EINVAL', refuseGuest(config)!);
  return kind.create(ctx, config, name, restore);
}
