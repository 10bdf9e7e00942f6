/*
 * A blkif front end written with Xen's own headers and ring macros
 * (libxen-dev: xen/io/blkif.h, xen/io/ring.h), for test/blk/peer.test.ts.
 * It only touches memory: it maps the guest's memory segment (shm_open +
 * mmap), initialises the shared ring page with XEN_FRONT_RING_INIT, and
 * builds requests with RING_GET_REQUEST / RING_PUSH_REQUESTS_AND_CHECK_NOTIFY
 * / RING_GET_RESPONSE. The guest (test/fixtures/hostile_blkfront.ts) grants
 * the pages and sends the notifications this program asks for on stdout.
 *
 * usage: blkif_peer SEGMENT RING_PFN SECTOR PFN0 REF0 PFN1 REF1 PFN2 REF2 PFN3 REF3
 * stdin: one line before the requests start (the handshake is done).
 * stdout: "layout ...", "ready", "notify" (relay it), "rsp ...", "ok" / "FAIL ...".
 */
#define __XEN_INTERFACE_VERSION__ 0x00040e00
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define xen_mb()  __sync_synchronize()
#define xen_rmb() __sync_synchronize()
#define xen_wmb() __sync_synchronize()
#include <xen/grant_table.h>
#include <xen/io/ring.h>
#include <xen/io/blkif.h>

#define PAGE 4096
static uint8_t *mem;
static blkif_front_ring_t ring;

static uint8_t *page(long pfn) { return mem + (size_t)pfn * PAGE; }

static void push(void) {
    int notify;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&ring, notify);
    if (notify) { printf("notify\n"); fflush(stdout); }
}

/* Waits for `n` responses; fills ids/statuses in ring order. */
static int wait_responses(int n, uint64_t *ids, int *st) {
    int got = 0;
    for (int spins = 0; got < n && spins < 20000; spins++) {
        RING_IDX rp = ring.sring->rsp_prod;
        xen_rmb();
        while (ring.rsp_cons != rp && got < n) {
            blkif_response_t *r = RING_GET_RESPONSE(&ring, ring.rsp_cons);
            ids[got] = r->id;
            st[got] = r->status;
            printf("rsp id=%llu op=%u status=%d\n", (unsigned long long)r->id, r->operation, r->status);
            got++;
            ring.rsp_cons++;
        }
        if (got < n) { struct timespec ts = { 0, 500000 }; nanosleep(&ts, NULL); }
    }
    fflush(stdout);
    return got;
}

static blkif_request_t *next(uint8_t op, uint64_t id, blkif_sector_t sector) {
    blkif_request_t *req = RING_GET_REQUEST(&ring, ring.req_prod_pvt);
    memset(req, 0, sizeof(*req));
    req->operation = op;
    req->id = id;
    req->sector_number = sector;
    req->handle = 0;
    ring.req_prod_pvt++;
    return req;
}

static void seg(blkif_request_t *req, grant_ref_t ref, uint8_t first, uint8_t last) {
    struct blkif_request_segment *s = &req->seg[req->nr_segments++];
    s->gref = ref;
    s->first_sect = first;
    s->last_sect = last;
}

int main(int argc, char **argv) {
    if (argc != 12) { fprintf(stderr, "usage: %s SEGMENT RING_PFN SECTOR PFN0 REF0 .. PFN3 REF3\n", argv[0]); return 2; }
    long ring_pfn = atol(argv[2]);
    blkif_sector_t sector = strtoull(argv[3], NULL, 10);
    long pfn[4]; grant_ref_t ref[4];
    for (int i = 0; i < 4; i++) { pfn[i] = atol(argv[4 + 2 * i]); ref[i] = (grant_ref_t)atol(argv[5 + 2 * i]); }
    long top = ring_pfn;
    for (int i = 0; i < 4; i++) if (pfn[i] > top) top = pfn[i];

    int fd = shm_open(argv[1], O_RDWR, 0);
    if (fd < 0) { perror("shm_open"); return 1; }
    mem = mmap(NULL, (size_t)(top + 1) * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED) { perror("mmap"); return 1; }
    close(fd);

    printf("layout req=%zu rsp=%zu seg=%zu off_id=%zu off_sector=%zu off_seg=%zu ring_size=%u\n",
           sizeof(blkif_request_t), sizeof(blkif_response_t), sizeof(struct blkif_request_segment),
           offsetof(blkif_request_t, id), offsetof(blkif_request_t, sector_number), offsetof(blkif_request_t, seg),
           (unsigned)__CONST_RING_SIZE(blkif, PAGE));
    blkif_sring_t *sring = (blkif_sring_t *)page(ring_pfn);
    XEN_FRONT_RING_INIT(&ring, sring, PAGE);
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return 1;

    /* Two patterns: a whole page and sectors 2..5 of a second page, 12 sectors from `sector`. */
    for (int i = 0; i < PAGE; i++) { page(pfn[0])[i] = (uint8_t)(i * 7 + 1); page(pfn[1])[i] = (uint8_t)(i * 13 + 5); }
    memset(page(pfn[2]), 0, PAGE);
    memset(page(pfn[3]), 0, PAGE);

    uint64_t ids[4]; int st[4];
    blkif_request_t *w = next(BLKIF_OP_WRITE, 0x1122334455667788ULL, sector);
    seg(w, ref[0], 0, 7);
    seg(w, ref[1], 2, 5);
    push();
    if (wait_responses(1, ids, st) != 1 || ids[0] != 0x1122334455667788ULL || st[0] != BLKIF_RSP_OKAY) { printf("FAIL write\n"); return 1; }

    blkif_request_t *f = next(BLKIF_OP_FLUSH_DISKCACHE, 7, 0);
    (void)f;
    push();
    if (wait_responses(1, ids, st) != 1 || ids[0] != 7 || st[0] != BLKIF_RSP_OKAY) { printf("FAIL flush\n"); return 1; }

    /* Read back as two requests pushed together: 8 sectors, then 4 into the middle of a page. */
    blkif_request_t *r1 = next(BLKIF_OP_READ, 21, sector);
    seg(r1, ref[2], 0, 7);
    blkif_request_t *r2 = next(BLKIF_OP_READ, 22, sector + 8);
    seg(r2, ref[3], 4, 7);
    push();
    if (wait_responses(2, ids, st) != 2 || st[0] != BLKIF_RSP_OKAY || st[1] != BLKIF_RSP_OKAY) { printf("FAIL read\n"); return 1; }
    if ((ids[0] != 21 && ids[0] != 22) || (ids[1] != 21 && ids[1] != 22) || ids[0] == ids[1]) { printf("FAIL ids\n"); return 1; }
    if (memcmp(page(pfn[2]), page(pfn[0]), PAGE) != 0) { printf("FAIL data page 0\n"); return 1; }
    if (memcmp(page(pfn[3]) + 4 * 512, page(pfn[1]) + 2 * 512, 4 * 512) != 0) { printf("FAIL data page 1\n"); return 1; }
    for (int i = 0; i < 4 * 512; i++) if (page(pfn[3])[i] != 0) { printf("FAIL outside the segment\n"); return 1; }

    /* An error, in Xen's layout too. */
    blkif_request_t *bad = next(BLKIF_OP_READ, 99, sector);
    seg(bad, ref[2], 6, 3);
    push();
    if (wait_responses(1, ids, st) != 1 || ids[0] != 99 || st[0] != BLKIF_RSP_ERROR) { printf("FAIL error response\n"); return 1; }
    printf("ok\n");
    fflush(stdout);
    return 0;
}
