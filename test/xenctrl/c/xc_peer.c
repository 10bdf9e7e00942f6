/*
 * xc_peer: a small Domain-0 program of Xen's kind, linked with Debian's
 * libxenctrl and libxenevtchn, run as a test peer under xenemu's privcmd
 * library (test/xenctrl/libxenctrl.test.ts). It prints one `key value...`
 * line per fact it learns, and exits non-zero on the first call that fails.
 *
 *   xc_peer domains            physinfo, then every domain (xc_domain_getinfo
 *                              from 0, as libxl walks them) with its vCPUs
 *   xc_peer next <domid>       the domain xc_domain_getinfo answers for <domid>
 *   xc_peer evtchn             two evtchn handles: an unbound port, its
 *                              interdomain peer, notify, pending, the mask
 *                              held until unmask; xc_evtchn_status of both
 *   xc_peer virq               binds VIRQ_DOM_EXC, prints `ready`, waits for
 *                              a line on stdin, then for the VIRQ (10 s)
 *
 * Built by the test: cc -o xc_peer xc_peer.c -lxenctrl -lxenevtchn
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xenctrl.h>
#include <xenevtchn.h>

#define VIRQ_DOM_EXC 3

static void die(const char *what)
{
	printf("error %s %s\n", what, strerror(errno));
	exit(1);
}

/* Waits up to `ms` for the handle's descriptor; the pending port, or -1 on a timeout. */
static int wait_port(xenevtchn_handle *h, int ms)
{
	struct pollfd p = { .fd = xenevtchn_fd(h), .events = POLLIN };
	int r = poll(&p, 1, ms), port;

	if (r < 0)
		die("poll");
	if (r == 0)
		return -1;
	port = xenevtchn_pending(h);
	if (port < 0)
		die("xenevtchn_pending");
	return port;
}

static int domains(xc_interface *xch)
{
	xc_physinfo_t p;
	xc_dominfo_t info[64];
	int n;

	if (xc_physinfo(xch, &p))
		die("xc_physinfo");
	printf("physinfo nr_cpus %u total_pages %" PRIu64 " free_pages %" PRIu64 " cpu_khz %u\n",
	       p.nr_cpus, (uint64_t)p.total_pages, (uint64_t)p.free_pages, p.cpu_khz);
	n = xc_domain_getinfo(xch, 0, 64, info);
	if (n < 0)
		die("xc_domain_getinfo");
	for (int i = 0; i < n; i++) {
		xc_dominfo_t *d = &info[i];

		printf("domain %u pages %lu max_memkb %lu online %u max_vcpu_id %u paused %u blocked %u running %u hvm %u shutdown %u dying %u\n",
		       d->domid, d->nr_pages, d->max_memkb, d->nr_online_vcpus, d->max_vcpu_id, d->paused, d->blocked,
		       d->running, d->hvm, d->shutdown, d->dying);
		for (unsigned v = 0; v <= d->max_vcpu_id && d->nr_online_vcpus; v++) {
			xc_vcpuinfo_t vi;

			if (xc_vcpu_getinfo(xch, d->domid, v, &vi))
				die("xc_vcpu_getinfo");
			printf("vcpu %u %u online %u\n", d->domid, v, vi.online);
		}
	}
	return 0;
}

static int next(xc_interface *xch, uint32_t asked)
{
	xc_dominfo_t d;
	int n = xc_domain_getinfo(xch, asked, 1, &d);

	/* None at or above: libxenctrl passes the hypervisor's -ESRCH on. */
	if (n < 0 && errno != ESRCH)
		die("xc_domain_getinfo");
	if (n <= 0)
		printf("next %u none\n", asked);
	else
		printf("next %u %u\n", asked, d.domid);
	return 0;
}

static int evtchn(xc_interface *xch)
{
	xenevtchn_handle *a = xenevtchn_open(NULL, 0), *b = xenevtchn_open(NULL, 0);
	xc_evtchn_status_t st = { .dom = DOMID_SELF };
	int pa, pb, got;

	if (!a || !b)
		die("xenevtchn_open");
	pa = xenevtchn_bind_unbound_port(a, 0);
	if (pa < 0)
		die("xenevtchn_bind_unbound_port");
	pb = xenevtchn_bind_interdomain(b, 0, pa);
	if (pb < 0)
		die("xenevtchn_bind_interdomain");
	printf("ports %d %d\n", pa, pb);
	/* The bind itself raises an event on the new port (as Xen does). */
	got = wait_port(b, 2000);
	printf("bind-event %d\n", got);
	if (got >= 0 && xenevtchn_unmask(b, got))
		die("xenevtchn_unmask");
	st.port = pb;
	if (xc_evtchn_status(xch, &st))
		die("xc_evtchn_status");
	printf("status %d remote %u %u\n", st.status, st.u.interdomain.dom, st.u.interdomain.port);

	if (xenevtchn_notify(a, pa))
		die("xenevtchn_notify");
	got = wait_port(b, 2000);
	printf("pending %d\n", got);
	/* Not unmasked yet: a second notify waits. */
	if (xenevtchn_notify(a, pa))
		die("xenevtchn_notify");
	printf("while-masked %d\n", wait_port(b, 300));
	if (xenevtchn_unmask(b, pb))
		die("xenevtchn_unmask");
	got = wait_port(b, 2000);
	printf("after-unmask %d\n", got);
	if (got >= 0 && xenevtchn_unmask(b, got))
		die("xenevtchn_unmask");
	/* The other way: b notifies a. */
	if (xenevtchn_notify(b, pb))
		die("xenevtchn_notify");
	printf("reverse %d\n", wait_port(a, 2000));
	/* A port this handle did not bind. */
	got = xenevtchn_notify(a, pb);
	printf("foreign-notify %d %s\n", got, got < 0 ? strerror(errno) : "-");
	if (xenevtchn_unbind(b, pb) || xenevtchn_unbind(a, pa))
		die("xenevtchn_unbind");
	st.port = pa;
	if (xc_evtchn_status(xch, &st))
		die("xc_evtchn_status");
	printf("closed-status %d\n", st.status);
	xenevtchn_close(a);
	xenevtchn_close(b);
	return 0;
}

static int virq(void)
{
	xenevtchn_handle *h = xenevtchn_open(NULL, 0);
	char line[64];
	int port, got;

	if (!h)
		die("xenevtchn_open");
	port = xenevtchn_bind_virq(h, VIRQ_DOM_EXC);
	if (port < 0)
		die("xenevtchn_bind_virq");
	printf("ready %d\n", port);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		die("stdin");
	got = wait_port(h, 10000);
	printf("virq %d\n", got);
	if (got >= 0 && xenevtchn_unmask(h, got))
		die("xenevtchn_unmask");
	xenevtchn_close(h);
	return 0;
}

int main(int argc, char **argv)
{
	xc_interface *xch;
	int rc = 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	xch = xc_interface_open(NULL, NULL, 0);
	if (!xch)
		die("xc_interface_open");
	if (argc >= 2 && !strcmp(argv[1], "domains"))
		rc = domains(xch);
	else if (argc >= 3 && !strcmp(argv[1], "next"))
		rc = next(xch, (uint32_t)strtoul(argv[2], NULL, 0));
	else if (argc >= 2 && !strcmp(argv[1], "evtchn"))
		rc = evtchn(xch);
	else if (argc >= 2 && !strcmp(argv[1], "virq"))
		rc = virq();
	xc_interface_close(xch);
	return rc;
}
