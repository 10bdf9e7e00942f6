// NVM Express 1.4 (NVM Express Base Specification, revision 1.4c): controller
// registers (section 3.1), command opcodes (5, 6), status codes (4.6.1) and
// the layouts of completion entries and of the data structures the NVMe
// model returns. Names follow the specification's mnemonics and Linux's
// include/linux/nvme.h spells the same fields.

/** Controller registers, offsets into BAR0 (3.1). */
export const NVME_REG_CAP = 0x00; // 64-bit
export const NVME_REG_VS = 0x08;
export const NVME_REG_INTMS = 0x0c;
export const NVME_REG_INTMC = 0x10;
export const NVME_REG_CC = 0x14;
export const NVME_REG_CSTS = 0x1c;
export const NVME_REG_NSSR = 0x20;
export const NVME_REG_AQA = 0x24;
export const NVME_REG_ASQ = 0x28; // 64-bit
export const NVME_REG_ACQ = 0x30; // 64-bit
export const NVME_REG_CMBLOC = 0x38;
export const NVME_REG_CMBSZ = 0x3c;
/** The first doorbell; with CAP.DSTRD 0 queue y's SQ tail is at 0x1000 + 8y, its CQ head at 0x1004 + 8y. */
export const NVME_REG_DBS = 0x1000;

export const NVME_VS_1_4 = 0x00010400;

/** CC (3.1.5). */
export const NVME_CC_EN = 1 << 0;
export const NVME_CC_CSS_SHIFT = 4; // 6:4, 000 = NVM command set
export const NVME_CC_MPS_SHIFT = 7; // 10:7, page size 2^(12 + MPS)
export const NVME_CC_AMS_SHIFT = 11; // 13:11
export const NVME_CC_SHN_SHIFT = 14; // 15:14, 01 normal, 10 abrupt
export const NVME_CC_IOSQES_SHIFT = 16; // 19:16
export const NVME_CC_IOCQES_SHIFT = 20; // 23:20

/** CSTS (3.1.6). */
export const NVME_CSTS_RDY = 1 << 0;
export const NVME_CSTS_CFS = 1 << 1;
export const NVME_CSTS_SHST_SHIFT = 2; // 3:2
export const NVME_CSTS_SHST_OCCUR = 1;
export const NVME_CSTS_SHST_CMPLT = 2;

/** Admin command opcodes (5). */
export const nvme_admin_delete_sq = 0x00;
export const nvme_admin_create_sq = 0x01;
export const nvme_admin_get_log_page = 0x02;
export const nvme_admin_delete_cq = 0x04;
export const nvme_admin_create_cq = 0x05;
export const nvme_admin_identify = 0x06;
export const nvme_admin_abort_cmd = 0x08;
export const nvme_admin_set_features = 0x09;
export const nvme_admin_get_features = 0x0a;
export const nvme_admin_async_event = 0x0c;
export const nvme_admin_keep_alive = 0x18;

/** NVM command set opcodes (6). */
export const nvme_cmd_flush = 0x00;
export const nvme_cmd_write = 0x01;
export const nvme_cmd_read = 0x02;
export const nvme_cmd_write_zeroes = 0x08;
export const nvme_cmd_dsm = 0x09;

/** Identify CNS values (5.15.1). */
export const NVME_ID_CNS_NS = 0x00;
export const NVME_ID_CNS_CTRL = 0x01;
export const NVME_ID_CNS_NS_ACTIVE_LIST = 0x02;
export const NVME_ID_CNS_NS_DESC_LIST = 0x03;
export const NVME_ID_CNS_CS_NS = 0x05;
export const NVME_ID_CNS_CS_CTRL = 0x06;

/** Feature identifiers (5.21.1). */
export const NVME_FEAT_ARBITRATION = 0x01;
export const NVME_FEAT_POWER_MGMT = 0x02;
export const NVME_FEAT_TEMP_THRESH = 0x04;
export const NVME_FEAT_ERR_RECOVERY = 0x05;
export const NVME_FEAT_VOLATILE_WC = 0x06;
export const NVME_FEAT_NUM_QUEUES = 0x07;
export const NVME_FEAT_IRQ_COALESCE = 0x08;
export const NVME_FEAT_IRQ_CONFIG = 0x09;
export const NVME_FEAT_WRITE_ATOMIC = 0x0a;
export const NVME_FEAT_ASYNC_EVENT = 0x0b;
export const NVME_FEAT_KATO = 0x0f;

/** Log pages (5.14.1). */
export const NVME_LOG_ERROR = 0x01;
export const NVME_LOG_SMART = 0x02;
export const NVME_LOG_FW_SLOT = 0x03;
export const NVME_LOG_SIZE_ERROR_ENTRY = 64;
export const NVME_LOG_SIZE_SMART = 512;
export const NVME_LOG_SIZE_FW_SLOT = 512;

/** Asynchronous event types and informations (5.2). */
export const NVME_AER_ERROR = 0;
export const NVME_AER_ERROR_INVALID_DB_REG = 0x00;
export const NVME_AER_ERROR_INVALID_DB_VALUE = 0x01;

/**
 * Status field of a completion (4.6.1): SC in bits 7:0, SCT in 10:8, DNR
 * bit 14; the entry's DW3 holds it shifted by one, above the phase tag.
 */
export const NVME_SCT_GENERIC = 0;
export const NVME_SCT_CMD_SPECIFIC = 1;
export const NVME_SCT_MEDIA = 2;
export const NVME_SC_DNR = 0x4000;

export const NVME_SC_SUCCESS = 0x000;
export const NVME_SC_INVALID_OPCODE = 0x001;
export const NVME_SC_INVALID_FIELD = 0x002;
export const NVME_SC_DATA_XFER_ERROR = 0x004;
export const NVME_SC_INTERNAL = 0x006;
export const NVME_SC_INVALID_NS = 0x00b;
export const NVME_SC_CMD_SEQ_ERROR = 0x00c;
export const NVME_SC_PRP_INVALID_OFFSET = 0x013;
export const NVME_SC_NS_WRITE_PROTECTED = 0x020;
export const NVME_SC_LBA_RANGE = 0x080;
export const NVME_SC_CQ_INVALID = 0x100;
export const NVME_SC_QID_INVALID = 0x101;
export const NVME_SC_QUEUE_SIZE = 0x102;
export const NVME_SC_ASYNC_LIMIT = 0x105;
export const NVME_SC_INVALID_VECTOR = 0x108;
export const NVME_SC_INVALID_LOG_PAGE = 0x109;
export const NVME_SC_INVALID_QUEUE = 0x10c; // Invalid Queue Deletion
export const NVME_SC_FEATURE_NOT_SAVEABLE = 0x10d;
export const NVME_SC_WRITE_FAULT = 0x280;
export const NVME_SC_READ_ERROR = 0x281;

/** Submission and completion entry sizes as CC.IOSQES/IOCQES encode them (2^n bytes). */
export const NVME_SQES = 6;
export const NVME_CQES = 4;
export const NVME_SQE_SIZE = 1 << NVME_SQES;
export const NVME_CQE_SIZE = 1 << NVME_CQES;

/** Identify data structures are 4 KiB. */
export const NVME_IDENTIFY_DATA_SIZE = 4096;

/** Identify Controller (5.15.2.2) byte offsets. */
export const ID_CTRL = {
  vid: 0, ssvid: 2, sn: 4, mn: 24, fr: 64, rab: 72, ieee: 73, cmic: 76, mdts: 77, cntlid: 78, ver: 80,
  oaes: 92, ctratt: 96, cntrltype: 111, oacs: 256, acl: 258, aerl: 259, frmw: 260, lpa: 261, elpe: 262,
  npss: 263, wctemp: 266, cctemp: 268, kas: 320, sqes: 512, cqes: 513, maxcmd: 514, nn: 516, oncs: 520,
  vwc: 525, sgls: 536, subnqn: 768, psd0: 2048,
} as const;

/** Identify Namespace (NVM command set, 6.1.5 of the 1.4 base spec's Figure 247) byte offsets. */
export const ID_NS = {
  nsze: 0, ncap: 8, nuse: 16, nsfeat: 24, nlbaf: 25, flbas: 26, dlfeat: 33, nguid: 104, eui64: 120, lbaf0: 128,
} as const;

/** Namespace Identification Descriptor types (Figure 249). */
export const NVME_NIDT_EUI64 = 1;
export const NVME_NIDT_NGUID = 2;
