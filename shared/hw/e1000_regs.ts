// Registers, bits and descriptor layouts of Intel's 8254x gigabit
// controllers as the 82540EM has them, with the names of Intel's "PCI/PCI-X
// Family of Gigabit Ethernet Controllers Software Developer's Manual"
// (8254x SDM, chapter 13 "Register Descriptions", chapter 3 "Receive and
// Transmit Description") as Linux's drivers/net/ethernet/intel/e1000/
// e1000_hw.h spells them. Offsets are bytes into BAR0.

// General (SDM 13.4.1-13.4.8).
export const E1000_CTRL = 0x00000;
export const E1000_STATUS = 0x00008;
export const E1000_EECD = 0x00010;
export const E1000_EERD = 0x00014;
export const E1000_CTRL_EXT = 0x00018;
export const E1000_FLA = 0x0001c;
export const E1000_MDIC = 0x00020;
export const E1000_FCAL = 0x00028;
export const E1000_FCAH = 0x0002c;
export const E1000_FCT = 0x00030;
export const E1000_VET = 0x00038;
// Interrupts (SDM 13.4.17-13.4.21).
export const E1000_ICR = 0x000c0;
export const E1000_ITR = 0x000c4;
export const E1000_ICS = 0x000c8;
export const E1000_IMS = 0x000d0;
export const E1000_IMC = 0x000d8;
// Receive (SDM 13.4.22-13.4.35).
export const E1000_RCTL = 0x00100;
export const E1000_FCTTV = 0x00170;
export const E1000_TXCW = 0x00178;
export const E1000_RXCW = 0x00180;
export const E1000_TCTL = 0x00400;
export const E1000_TIPG = 0x00410;
export const E1000_AIT = 0x00458;
export const E1000_LEDCTL = 0x00e00;
export const E1000_PBA = 0x01000;
export const E1000_FCRTL = 0x02160;
export const E1000_FCRTH = 0x02168;
export const E1000_RDBAL = 0x02800;
export const E1000_RDBAH = 0x02804;
export const E1000_RDLEN = 0x02808;
export const E1000_RDH = 0x02810;
export const E1000_RDT = 0x02818;
export const E1000_RDTR = 0x02820;
export const E1000_RXDCTL = 0x02828;
export const E1000_RADV = 0x0282c;
export const E1000_RSRPD = 0x02c00;
export const E1000_TXDMAC = 0x03000;
export const E1000_TDBAL = 0x03800;
export const E1000_TDBAH = 0x03804;
export const E1000_TDLEN = 0x03808;
export const E1000_TDH = 0x03810;
export const E1000_TDT = 0x03818;
export const E1000_TIDV = 0x03820;
export const E1000_TXDCTL = 0x03828;
export const E1000_TADV = 0x0382c;
export const E1000_TSPMT = 0x03830;
export const E1000_RXCSUM = 0x05000;
export const E1000_MTA = 0x05200; // 128 registers
export const E1000_RA = 0x05400; // 16 pairs of RAL, RAH
export const E1000_RAL = (i: number): number => E1000_RA + 8 * i;
export const E1000_RAH = (i: number): number => E1000_RA + 8 * i + 4;
export const E1000_VFTA = 0x05600; // 128 registers
export const E1000_WUC = 0x05800;
export const E1000_WUFC = 0x05808;
export const E1000_WUS = 0x05810;
export const E1000_MANC = 0x05820;

// Statistics (SDM 13.7), all clear on read.
export const E1000_CRCERRS = 0x04000;
export const E1000_ALGNERRC = 0x04004;
export const E1000_SYMERRS = 0x04008;
export const E1000_RXERRC = 0x0400c;
export const E1000_MPC = 0x04010;
export const E1000_SCC = 0x04014;
export const E1000_ECOL = 0x04018;
export const E1000_MCC = 0x0401c;
export const E1000_LATECOL = 0x04020;
export const E1000_COLC = 0x04028;
export const E1000_DC = 0x04030;
export const E1000_TNCRS = 0x04034;
export const E1000_SEC = 0x04038;
export const E1000_CEXTERR = 0x0403c;
export const E1000_RLEC = 0x04040;
export const E1000_XONRXC = 0x04048;
export const E1000_XONTXC = 0x0404c;
export const E1000_XOFFRXC = 0x04050;
export const E1000_XOFFTXC = 0x04054;
export const E1000_FCRUC = 0x04058;
export const E1000_PRC64 = 0x0405c;
export const E1000_PRC127 = 0x04060;
export const E1000_PRC255 = 0x04064;
export const E1000_PRC511 = 0x04068;
export const E1000_PRC1023 = 0x0406c;
export const E1000_PRC1522 = 0x04070;
export const E1000_GPRC = 0x04074;
export const E1000_BPRC = 0x04078;
export const E1000_MPRC = 0x0407c;
export const E1000_GPTC = 0x04080;
export const E1000_GORCL = 0x04088;
export const E1000_GORCH = 0x0408c;
export const E1000_GOTCL = 0x04090;
export const E1000_GOTCH = 0x04094;
export const E1000_RNBC = 0x040a0;
export const E1000_RUC = 0x040a4;
export const E1000_RFC = 0x040a8;
export const E1000_ROC = 0x040ac;
export const E1000_RJC = 0x040b0;
export const E1000_MGTPRC = 0x040b4;
export const E1000_MGTPDC = 0x040b8;
export const E1000_MGTPTC = 0x040bc;
export const E1000_TORL = 0x040c0;
export const E1000_TORH = 0x040c4;
export const E1000_TOTL = 0x040c8;
export const E1000_TOTH = 0x040cc;
export const E1000_TPR = 0x040d0;
export const E1000_TPT = 0x040d4;
export const E1000_PTC64 = 0x040d8;
export const E1000_PTC127 = 0x040dc;
export const E1000_PTC255 = 0x040e0;
export const E1000_PTC511 = 0x040e4;
export const E1000_PTC1023 = 0x040e8;
export const E1000_PTC1522 = 0x040ec;
export const E1000_MPTC = 0x040f0;
export const E1000_BPTC = 0x040f4;
export const E1000_TSCTC = 0x040f8;
export const E1000_TSCTFC = 0x040fc;
export const E1000_STATS_FIRST = E1000_CRCERRS;
export const E1000_STATS_LAST = E1000_TSCTFC;

// CTRL (SDM 13.4.1).
export const E1000_CTRL_FD = 0x00000001;
export const E1000_CTRL_LRST = 0x00000008;
export const E1000_CTRL_ASDE = 0x00000020;
export const E1000_CTRL_SLU = 0x00000040;
export const E1000_CTRL_ILOS = 0x00000080;
export const E1000_CTRL_SPD_1000 = 0x00000200;
export const E1000_CTRL_FRCSPD = 0x00000800;
export const E1000_CTRL_FRCDPLX = 0x00001000;
export const E1000_CTRL_RST = 0x04000000;
export const E1000_CTRL_RFCE = 0x08000000;
export const E1000_CTRL_TFCE = 0x10000000;
export const E1000_CTRL_VME = 0x40000000;
export const E1000_CTRL_PHY_RST = 0x80000000;

// STATUS (SDM 13.4.2).
export const E1000_STATUS_FD = 0x00000001;
export const E1000_STATUS_LU = 0x00000002;
export const E1000_STATUS_TXOFF = 0x00000010;
export const E1000_STATUS_SPEED_1000 = 0x00000080;
export const E1000_STATUS_ASDV_1000 = 0x00000200;
export const E1000_STATUS_PCI66 = 0x00000800;
export const E1000_STATUS_BUS64 = 0x00001000;
export const E1000_STATUS_PCIX_MODE = 0x00002000;

// EECD (SDM 13.4.3): the bit-banged Microwire interface.
export const E1000_EECD_SK = 0x00000001;
export const E1000_EECD_CS = 0x00000002;
export const E1000_EECD_DI = 0x00000004;
export const E1000_EECD_DO = 0x00000008;
export const E1000_EECD_FWE_MASK = 0x00000030;
export const E1000_EECD_REQ = 0x00000040;
export const E1000_EECD_GNT = 0x00000080;
export const E1000_EECD_PRES = 0x00000100;
export const E1000_EECD_SIZE = 0x00000200;

// EERD (SDM 13.4.4), in the layout QEMU and Linux's 8254x code use.
export const E1000_EEPROM_RW_REG_START = 0x00000001;
export const E1000_EEPROM_RW_REG_DONE = 0x00000010;
export const E1000_EEPROM_RW_ADDR_SHIFT = 8;
export const E1000_EEPROM_RW_REG_DATA = 16;

// CTRL_EXT (SDM 13.4.6).
export const E1000_CTRL_EXT_EE_RST = 0x00002000;

// MDIC (SDM 13.4.7).
export const E1000_MDIC_DATA_MASK = 0x0000ffff;
export const E1000_MDIC_REG_SHIFT = 16;
export const E1000_MDIC_PHY_SHIFT = 21;
export const E1000_MDIC_OP_WRITE = 0x04000000;
export const E1000_MDIC_OP_READ = 0x08000000;
export const E1000_MDIC_READY = 0x10000000;
export const E1000_MDIC_INT_EN = 0x20000000;
export const E1000_MDIC_ERROR = 0x40000000;

// ICR/ICS/IMS/IMC bits (SDM 13.4.17).
export const E1000_ICR_TXDW = 0x00000001;
export const E1000_ICR_TXQE = 0x00000002;
export const E1000_ICR_LSC = 0x00000004;
export const E1000_ICR_RXSEQ = 0x00000008;
export const E1000_ICR_RXDMT0 = 0x00000010;
export const E1000_ICR_RXO = 0x00000040;
export const E1000_ICR_RXT0 = 0x00000080;
export const E1000_ICR_MDAC = 0x00000200;
export const E1000_ICR_RXCFG = 0x00000400;
export const E1000_ICR_TXD_LOW = 0x00008000;
export const E1000_ICR_SRPD = 0x00010000;
/** Interrupt causes the 82540EM has (SDM table 13-63; the rest are reserved). */
export const E1000_ICR_VALID = 0x0001f6df;

// RCTL (SDM 13.4.22).
export const E1000_RCTL_EN = 0x00000002;
export const E1000_RCTL_SBP = 0x00000004;
export const E1000_RCTL_UPE = 0x00000008;
export const E1000_RCTL_MPE = 0x00000010;
export const E1000_RCTL_LPE = 0x00000020;
export const E1000_RCTL_LBM_MASK = 0x000000c0;
export const E1000_RCTL_LBM_MAC = 0x00000040;
export const E1000_RCTL_RDMTS_SHIFT = 8;
export const E1000_RCTL_MO_SHIFT = 12;
export const E1000_RCTL_BAM = 0x00008000;
export const E1000_RCTL_BSIZE_SHIFT = 16;
export const E1000_RCTL_VFE = 0x00040000;
export const E1000_RCTL_BSEX = 0x02000000;
export const E1000_RCTL_SECRC = 0x04000000;

// TCTL (SDM 13.4.33).
export const E1000_TCTL_EN = 0x00000002;
export const E1000_TCTL_PSP = 0x00000008;

// RXCSUM (SDM 13.4.34).
export const E1000_RXCSUM_PCSS_MASK = 0x000000ff;
export const E1000_RXCSUM_IPOFL = 0x00000100;
export const E1000_RXCSUM_TUOFL = 0x00000200;

// RAH (SDM 13.4.40).
export const E1000_RAH_AV = 0x80000000;

// Receive descriptor (SDM 3.2.3): buffer address (8), length (2), checksum (2), status, errors, special (2).
export const E1000_RXD_STAT_DD = 0x01;
export const E1000_RXD_STAT_EOP = 0x02;
export const E1000_RXD_STAT_IXSM = 0x04;
export const E1000_RXD_STAT_VP = 0x08;
export const E1000_RXD_STAT_TCPCS = 0x20;
export const E1000_RXD_STAT_IPCS = 0x40;
export const E1000_RXD_ERR_RXE = 0x80;
export const E1000_RXD_ERR_IPE = 0x40;
export const E1000_RXD_ERR_TCPE = 0x20;

// Transmit descriptors (SDM 3.3.3 legacy, 3.3.5 context, 3.3.7 data): command byte (bits 31:24 of dword 2).
export const E1000_TXD_CMD_EOP = 0x01;
export const E1000_TXD_CMD_IFCS = 0x02;
export const E1000_TXD_CMD_IC = 0x04; // legacy: insert checksum
export const E1000_TXD_CMD_TSE = 0x04; // context and data: TCP segmentation
export const E1000_TXD_CMD_RS = 0x08;
export const E1000_TXD_CMD_RPS = 0x10;
export const E1000_TXD_CMD_DEXT = 0x20;
export const E1000_TXD_CMD_VLE = 0x40;
export const E1000_TXD_CMD_IDE = 0x80;
/** Context descriptor TUCMD bits (with TSE, RS, DEXT, IDE as above). */
export const E1000_TXD_CMD_TCP = 0x01;
export const E1000_TXD_CMD_IP = 0x02;
export const E1000_TXD_DTYP_CONTEXT = 0x0;
export const E1000_TXD_DTYP_DATA = 0x1;
export const E1000_TXD_STAT_DD = 0x01;
/** Data descriptor POPTS (byte 13). */
export const E1000_TXD_POPTS_IXSM = 0x01;
export const E1000_TXD_POPTS_TXSM = 0x02;

/** Both rings' descriptors are 16 bytes. */
export const E1000_DESC_SIZE = 16;
