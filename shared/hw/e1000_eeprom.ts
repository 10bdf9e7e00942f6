// The 82540EM's configuration EEPROM: a 64-word Microwire part (93C46
// class) behind EECD's bit-banged SK/CS/DI/DO (8254x SDM 5.4 "EEPROM
// Interface", 13.4.3 EECD) and EERD's one-word reads (13.4.4). Linux's e1000
// (e1000_hw.c: e1000_acquire_eeprom, e1000_shift_out_ee_bits,
// e1000_shift_in_ee_bits, e1000_read_eeprom) reads the MAC address and
// checks that words 0x00-0x3F add up to 0xBABA.
//
// Microwire read, as the driver clocks it with CS high:
//   rising SK edges shift in DI: opcode 110 (start bit + READ) then 6 address bits;
//   after the last address bit the part drives a dummy 0, and from the next
//   falling edge on DO presents the word, most significant bit first, a new
//   bit after each falling edge; it keeps going into the next words until CS drops.
// Writes (EWEN/WRITE/ERASE) are accepted and ignored: the image is fixed, and
// DO reads 1 ("ready") outside a read so a driver polling for completion moves on.
import {
  E1000_EECD_CS, E1000_EECD_DI, E1000_EECD_DO, E1000_EECD_FWE_MASK, E1000_EECD_GNT, E1000_EECD_PRES, E1000_EECD_REQ, E1000_EECD_SK,
} from './e1000_regs.js';

export const EEPROM_WORDS = 64;
/** Word whose value makes words 0x00-0x3F sum to EEPROM_SUM (SDM 5.6.16). */
export const EEPROM_CHECKSUM_REG = 0x3f;
export const EEPROM_SUM = 0xbaba;
const MICROWIRE_READ = 0b110;
const ADDRESS_BITS = 6;

/** The EEPROM image an 82540EM with `mac` and these PCI identities carries (SDM 5.6, EEPROM address map). */
export function e1000EepromImage(mac: Uint8Array, ids: { vendor: number; device: number; subVendor: number; subDevice: number }): Uint16Array {
  const w = new Uint16Array(EEPROM_WORDS);
  w[0x00] = mac[0]! | (mac[1]! << 8);
  w[0x01] = mac[2]! | (mac[3]! << 8);
  w[0x02] = mac[4]! | (mac[5]! << 8);
  w[0x04] = 0xffff; // LED configuration: unprogrammed, so drivers use LEDCTL's defaults (e1000_id_led_init)
  w[0x0b] = ids.subDevice;
  w[0x0c] = ids.subVendor;
  w[0x0d] = ids.device;
  w[0x0e] = ids.vendor;
  // Initialization Control Word 2: PAUSE and ASM_DIR clear, so drivers leave
  // flow control off (e1000_setup_link), and APM (wake on LAN) off.
  w[0x0f] = 0x0000;
  for (let i = 0x10; i < EEPROM_CHECKSUM_REG; i++) w[i] = 0xffff; // unprogrammed
  let sum = 0;
  for (let i = 0; i < EEPROM_CHECKSUM_REG; i++) sum += w[i]!;
  w[EEPROM_CHECKSUM_REG] = (EEPROM_SUM - sum) & 0xffff;
  return w;
}

export class MicrowireEeprom {
  /** SK, CS, DI, FWE and REQ as the driver last wrote them. */
  private pins = 0;
  private bitsIn = 0;
  private shiftIn = 0;
  private reading = false;
  private address = 0;
  /** Index of the data bit on DO (-1: the dummy bit before the first). */
  private outBit = -1;

  constructor(readonly words: Uint16Array) {}

  reset(): void {
    this.pins = 0;
    this.deselect();
  }

  /** EECD as read: the pins written, DO, GNT when requested, and PRES (an EEPROM is fitted; 64 words, so SIZE clear). */
  readEecd(): number {
    return this.pins | (this.dataOut() ? E1000_EECD_DO : 0) | (this.pins & E1000_EECD_REQ ? E1000_EECD_GNT : 0) | E1000_EECD_PRES;
  }

  writeEecd(v: number): void {
    const old = this.pins;
    this.pins = v & (E1000_EECD_SK | E1000_EECD_CS | E1000_EECD_DI | E1000_EECD_FWE_MASK | E1000_EECD_REQ);
    if (!(v & E1000_EECD_CS)) { this.deselect(); return; }
    if (!(old & E1000_EECD_CS)) this.deselect(); // CS rising: a new command starts
    if (!((old ^ v) & E1000_EECD_SK)) return;
    if (!(v & E1000_EECD_SK)) {
      if (this.reading) this.outBit++;
      return;
    }
    if (this.reading || this.bitsIn >= 3 + ADDRESS_BITS) return;
    this.shiftIn = (this.shiftIn << 1) | (v & E1000_EECD_DI ? 1 : 0);
    if (++this.bitsIn === 3 + ADDRESS_BITS) {
      this.address = this.shiftIn & (EEPROM_WORDS - 1);
      this.reading = (this.shiftIn >> ADDRESS_BITS) === MICROWIRE_READ;
      this.outBit = -1;
    }
  }

  /** One word through EERD. */
  readWord(address: number): number {
    return address < EEPROM_WORDS ? this.words[address]! : 0;
  }

  private deselect(): void {
    this.bitsIn = 0;
    this.shiftIn = 0;
    this.reading = false;
    this.outBit = -1;
  }

  private dataOut(): boolean {
    if (!this.reading) return true;
    if (this.outBit < 0) return false; // the dummy zero
    const word = this.words[(this.address + (this.outBit >> 4)) & (EEPROM_WORDS - 1)]!;
    return ((word >> (15 - (this.outBit & 15))) & 1) === 1;
  }
}
