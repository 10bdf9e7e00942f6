// An emulated NIC's cable to a bridge in Domain-0 (processes/dom0/netback/tap.ts
// binds it, qemu-dm connects): one ZeroMQ PAIR socket per NIC, one Ethernet
// frame (no FCS) per message, in either direction. Named as Xen names
// qemu's tap device: vif<domid>.<n>-emu.
export function tapName(domid: number, nic: number): string {
  return `vif${domid}.${nic}-emu`;
}

export function tapEndpoint(rundir: string, name: string): string {
  return `ipc://${rundir}/${name}.tap`;
}
