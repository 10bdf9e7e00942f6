/* Prints the byte layouts of Xen's HVM structures (libxen-dev's
 * xen/hvm/ioreq.h, hvm_info_table.h) as JSON, for test/hvm/abi_layout.test.ts
 * to compare with shared/abi/hvm/. Bit-fields are found by setting each in
 * an otherwise zero struct and reporting the bytes that changed. */
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/hvm/ioreq.h>
#include <xen/hvm/hvm_info_table.h>

static void bytes(const char *name, const void *p, size_t n, int comma) {
    const unsigned char *b = p;
    printf("\"%s\":[", name);
    for (size_t i = 0; i < n; i++) printf("%s%u", i ? "," : "", b[i]);
    printf("]%s", comma ? "," : "");
}

int main(void) {
    ioreq_t r;
    buf_ioreq_t br;
    printf("{\"ioreq_size\":%zu,\"addr\":%zu,\"data\":%zu,\"count\":%zu,\"size\":%zu,\"vp_eport\":%zu,\"type\":%zu,",
           sizeof(ioreq_t), offsetof(ioreq_t, addr), offsetof(ioreq_t, data), offsetof(ioreq_t, count),
           offsetof(ioreq_t, size), offsetof(ioreq_t, vp_eport), offsetof(ioreq_t, type));
    memset(&r, 0, sizeof r); r.state = STATE_IORESP_READY; bytes("state3", &r, sizeof r, 1);
    memset(&r, 0, sizeof r); r.data_is_ptr = 1; bytes("dataIsPtr", &r, sizeof r, 1);
    memset(&r, 0, sizeof r); r.dir = IOREQ_READ; bytes("dirRead", &r, sizeof r, 1);
    memset(&r, 0, sizeof r); r.df = 1; bytes("df", &r, sizeof r, 1);
    memset(&br, 0, sizeof br); br.type = IOREQ_TYPE_COPY; br.dir = 1; br.size = 2; br.addr = 0xb8123; br.data = 0x11223344;
    bytes("bufIoreq", &br, sizeof br, 1);
    printf("\"buf_ioreq_size\":%zu,\"buffered_iopage_size\":%zu,\"read_pointer\":%zu,\"write_pointer\":%zu,\"buf_ioreq\":%zu,",
           sizeof(buf_ioreq_t), sizeof(buffered_iopage_t), (size_t)0, (size_t)4, offsetof(buffered_iopage_t, buf_ioreq));
    printf("\"slot_num\":%d,", IOREQ_BUFFER_SLOT_NUM);
    printf("\"hvm_info_size\":%zu,\"hi_length\":%zu,\"hi_checksum\":%zu,\"hi_apic_mode\":%zu,\"hi_nr_vcpus\":%zu,"
           "\"hi_low_mem_pgend\":%zu,\"hi_reserved_mem_pgstart\":%zu,\"hi_high_mem_pgend\":%zu,\"hi_vcpu_online\":%zu,"
           "\"HVM_INFO_PADDR\":%d}\n",
           sizeof(struct hvm_info_table), offsetof(struct hvm_info_table, length), offsetof(struct hvm_info_table, checksum),
           offsetof(struct hvm_info_table, apic_mode), offsetof(struct hvm_info_table, nr_vcpus),
           offsetof(struct hvm_info_table, low_mem_pgend), offsetof(struct hvm_info_table, reserved_mem_pgstart),
           offsetof(struct hvm_info_table, high_mem_pgend), offsetof(struct hvm_info_table, vcpu_online), HVM_INFO_PADDR);
    return 0;
}
