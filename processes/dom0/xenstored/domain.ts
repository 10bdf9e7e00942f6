// Introduced domains and per-domain quotas (xenstored_domain.c, and the
// defaults of Xen's xenstored: docs/misc/xenstore.txt and xenstored --help).
// Domain-0 (privileged) is exempt from every quota.

export interface Quotas {
  /** Nodes a domain may own. */
  nodes: number;
  /** Watches a domain may hold. */
  watches: number;
  /** Transactions a domain may have open at once. */
  transactions: number;
  /** Largest node value, in bytes. */
  valueSize: number;
  /** Requests whose replies are not yet consumed before reading stops. */
  outstanding: number;
  /** Entries in one node's permission list. */
  perms: number;
  /** Nodes one transaction may touch (Xen's transaction-nodes quota): what its copies can cost. */
  transactionNodes: number;
}

export const DEFAULT_QUOTAS: Quotas = {
  nodes: 1000,
  watches: 128,
  transactions: 10,
  valueSize: 2048,
  outstanding: 20,
  perms: 5,
  transactionNodes: 1024,
};

export interface DomainInfo {
  domid: number;
  mfn: number;
  port: number;
  /** SET_TARGET: this domain (a device model) acts with its target's rights. */
  target: number | undefined;
  shutdown: boolean;
}

export class Domains {
  readonly introduced = new Map<number, DomainInfo>();
  /** Nodes owned per domid (the first permission entry names the owner). */
  private readonly owned = new Map<number, number>();
  /** Targets of connections, looked up by domid (socket connections have none). */
  readonly quotas: Quotas;

  constructor(quotas: Partial<Quotas> = {}) {
    this.quotas = { ...DEFAULT_QUOTAS, ...quotas };
  }

  nodesOwned(domid: number): number {
    return this.owned.get(domid) ?? 0;
  }

  countOwner(domid: number, delta: number): void {
    const n = (this.owned.get(domid) ?? 0) + delta;
    if (n <= 0) this.owned.delete(domid);
    else this.owned.set(domid, n);
  }

  targetOf(domid: number): number | undefined {
    return this.introduced.get(domid)?.target;
  }
}
