// The 82540EM's integrated copper PHY, a Marvell 88E1011 (8254x SDM 13.5
// "PHY Registers"), reached through MDIC as PHY address 1. Registers 0-15
// are IEEE 802.3 clause 22's (MII control and status, identifiers,
// auto-negotiation, 1000BASE-T control and status); 16-21 are Marvell's.
// Linux's e1000 (e1000_hw.c: e1000_detect_gig_phy, e1000_copper_link_*,
// e1000_config_fc_after_link_up, e1000_check_downshift, e1000_phy_m88_get_info)
// reads these and must find an M88E1011 at 1000 Mb/s full duplex.
//
// The partner is an ideal switch: auto-negotiation completes as soon as it
// is (re)started while the cable is in, advertising 10/100/1000 both
// duplexes and symmetric pause.

export const PHY_CTRL = 0x00;
export const PHY_STATUS = 0x01;
export const PHY_ID1 = 0x02;
export const PHY_ID2 = 0x03;
export const PHY_AUTONEG_ADV = 0x04;
export const PHY_LP_ABILITY = 0x05;
export const PHY_AUTONEG_EXP = 0x06;
export const PHY_NEXT_PAGE_TX = 0x07;
export const PHY_LP_NEXT_PAGE = 0x08;
export const PHY_1000T_CTRL = 0x09;
export const PHY_1000T_STATUS = 0x0a;
export const PHY_EXT_STATUS = 0x0f;
export const M88E1000_PHY_SPEC_CTRL = 0x10;
export const M88E1000_PHY_SPEC_STATUS = 0x11;
export const M88E1000_INT_ENABLE = 0x12;
export const M88E1000_INT_STATUS = 0x13;
export const M88E1000_EXT_PHY_SPEC_CTRL = 0x14;
export const M88E1000_RX_ERR_CNTR = 0x15;

export const MII_CR_SPEED_1000 = 0x0040;
export const MII_CR_FULL_DUPLEX = 0x0100;
export const MII_CR_RESTART_AUTO_NEG = 0x0200;
export const MII_CR_AUTO_NEG_EN = 0x1000;
export const MII_CR_LOOPBACK = 0x4000;
export const MII_CR_RESET = 0x8000;

export const MII_SR_EXTENDED_CAPS = 0x0001;
export const MII_SR_LINK_STATUS = 0x0004;
export const MII_SR_AUTONEG_CAPS = 0x0008;
export const MII_SR_AUTONEG_COMPLETE = 0x0020;
export const MII_SR_PREAMBLE_SUPPRESS = 0x0040;
export const MII_SR_EXTENDED_STATUS = 0x0100;
export const MII_SR_10T_HD_CAPS = 0x0800;
export const MII_SR_10T_FD_CAPS = 0x1000;
export const MII_SR_100X_HD_CAPS = 0x2000;
export const MII_SR_100X_FD_CAPS = 0x4000;

/** M88E1011_I_PHY_ID of e1000_hw.h: ID1 0x0141 (Marvell's OUI), ID2 0x0C2x (model 0x02, revision in bits 3:0). */
export const M88E1011_I_PHY_ID = 0x01410c20;

const NWAY_LP_ABILITY = 0x45e1; // ACK, PAUSE, 100FD 100HD 10FD 10HD, IEEE 802.3 selector
const SR_1000T_LINK_UP = 0x3c00; // local and remote receiver OK, partner 1000FD and 1000HD
const M88_PSSR_LINK_UP = 0xac00; // 1000 Mb/s, full duplex, speed and duplex resolved, link up

/** Registers the driver may write; the others are read-only (writes ignored). */
const WRITABLE = new Set([PHY_CTRL, PHY_AUTONEG_ADV, PHY_NEXT_PAGE_TX, PHY_1000T_CTRL, M88E1000_PHY_SPEC_CTRL,
  M88E1000_INT_ENABLE, M88E1000_EXT_PHY_SPEC_CTRL, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f]);

export class M88E1011Phy {
  readonly regs = new Uint16Array(32);
  /** Link status in PHY_STATUS latches low until read (clause 22.2.4.2.13). */
  private linkLatchedDown = false;

  constructor(private linkUp: boolean) { this.reset(); }

  reset(): void {
    const r = this.regs;
    r.fill(0);
    r[PHY_CTRL] = MII_CR_AUTO_NEG_EN | MII_CR_FULL_DUPLEX | MII_CR_SPEED_1000;
    r[PHY_ID1] = M88E1011_I_PHY_ID >>> 16;
    r[PHY_ID2] = M88E1011_I_PHY_ID & 0xffff;
    r[PHY_AUTONEG_ADV] = 0x01e1; // 100FD 100HD 10FD 10HD, selector 802.3
    r[PHY_NEXT_PAGE_TX] = 0x2001;
    r[PHY_1000T_CTRL] = 0x0300; // advertise 1000FD and 1000HD
    r[PHY_EXT_STATUS] = 0x3000; // 1000BASE-T full and half duplex capable
    r[M88E1000_PHY_SPEC_CTRL] = 0x0068;
    r[M88E1000_EXT_PHY_SPEC_CTRL] = 0x0d60;
    this.linkLatchedDown = false;
    this.negotiate();
  }

  get loopback(): boolean { return (this.regs[PHY_CTRL]! & MII_CR_LOOPBACK) !== 0; }
  get isLinkUp(): boolean { return this.linkUp; }

  /** The cable went in or out; returns whether anything changed. */
  setLink(up: boolean): boolean {
    if (up === this.linkUp) return false;
    this.linkUp = up;
    if (!up) this.linkLatchedDown = true;
    this.negotiate();
    return true;
  }

  read(reg: number): number {
    const r = this.regs;
    if (reg === PHY_STATUS) {
      const v = r[PHY_STATUS]! & ~(this.linkLatchedDown ? MII_SR_LINK_STATUS : 0);
      this.linkLatchedDown = false;
      return v;
    }
    if (reg === M88E1000_INT_STATUS || reg === M88E1000_RX_ERR_CNTR) {
      const v = r[reg]!;
      r[reg] = 0; // clear on read
      return v;
    }
    return r[reg & 31]!;
  }

  /** A write through MDIC; returns true when auto-negotiation (re)completed, for the MAC's LSC. */
  write(reg: number, value: number): boolean {
    reg &= 31;
    if (!WRITABLE.has(reg)) return false;
    if (reg !== PHY_CTRL) { this.regs[reg] = value; return false; }
    if (value & MII_CR_RESET) {
      // Software reset keeps the control bits written with it and restarts negotiation (88E1011 register 0.15).
      this.regs[PHY_CTRL] = value & ~(MII_CR_RESET | MII_CR_RESTART_AUTO_NEG);
      this.negotiate();
      return this.linkUp;
    }
    this.regs[PHY_CTRL] = value & ~MII_CR_RESTART_AUTO_NEG;
    if (value & MII_CR_RESTART_AUTO_NEG) { this.negotiate(); return this.linkUp; }
    return false;
  }

  /** Link and negotiation results into the status registers. */
  private negotiate(): void {
    const r = this.regs;
    const autoneg = (r[PHY_CTRL]! & MII_CR_AUTO_NEG_EN) !== 0;
    r[PHY_STATUS] = MII_SR_EXTENDED_CAPS | MII_SR_AUTONEG_CAPS | MII_SR_PREAMBLE_SUPPRESS | MII_SR_EXTENDED_STATUS
      | MII_SR_10T_HD_CAPS | MII_SR_10T_FD_CAPS | MII_SR_100X_HD_CAPS | MII_SR_100X_FD_CAPS
      | (this.linkUp ? MII_SR_LINK_STATUS : 0) | (this.linkUp && autoneg ? MII_SR_AUTONEG_COMPLETE : 0);
    r[PHY_LP_ABILITY] = this.linkUp && autoneg ? NWAY_LP_ABILITY : 0;
    r[PHY_AUTONEG_EXP] = this.linkUp && autoneg ? 0x0001 : 0; // partner is auto-negotiation able
    r[PHY_1000T_STATUS] = this.linkUp ? SR_1000T_LINK_UP : 0;
    r[M88E1000_PHY_SPEC_STATUS] = this.linkUp ? M88_PSSR_LINK_UP : 0;
  }
}
