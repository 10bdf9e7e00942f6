/*
 * xen_c_shim: lets Debian's C xenstored (xen-utils-4.17) run as an ordinary
 * process on a Unix socket, as a reference to compare xenemu's xenstored
 * with (test/xenstored/xen_c_lockstep.test.ts). Loaded with LD_PRELOAD.
 *
 * The daemon serves socket clients only after it has set up Domain-0 (its
 * socket connections account their memory to Domain-0's struct domain), and
 * that setup opens the hypervisor interfaces: privcmd (xc_interface_open),
 * gntdev (xengnttab_open), evtchn (xenevtchn_open and a VIRQ_DOM_EXC
 * binding), /proc/xen/xsd_port for Domain-0's event channel and
 * /proc/xen/xsd_kva for its ring page. Here each of those succeeds without a
 * hypervisor: the handles are dummies, the event channel descriptor is an
 * eventfd nothing ever signals, the port file reads "1" and the ring page is
 * an anonymous page nobody else writes, and xc_domain_getinfo finds every
 * domain asked about. Everything the tests compare goes
 * over the socket; Domain-0's ring stays silent.
 *
 * It also ties the daemon's life to the test's: PR_SET_PDEATHSIG, so a test
 * killed by its timeout leaves no daemon behind.
 *
 * Built by the test with: cc -shared -fPIC -o xen_c_shim.so xen_c_shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <signal.h>
#include <unistd.h>
#include <xenctrl.h>

static int evfd = -1;

__attribute__((constructor)) static void die_with_parent(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(1);
}

static int dummy;

xc_interface *xc_interface_open(xentoollog_logger *logger, xentoollog_logger *dombuild_logger, unsigned flags)
{
	return (xc_interface *)&dummy;
}
int xc_interface_close(xc_interface *h) { return 0; }

/*
 * Every domain asked about exists and runs: xenemu's xenstored does not know
 * which domains exist, and takes every domid in a permission list as valid.
 */
int xc_domain_getinfo(xc_interface *h, uint32_t first_domid, unsigned int max_doms, xc_dominfo_t *info)
{
	if (max_doms < 1)
		return 0;
	memset(info, 0, sizeof(*info));
	info->domid = first_domid;
	return 1;
}

void *xengnttab_open(void *logger, unsigned flags) { return &dummy; }
int xengnttab_close(void *h) { return 0; }
int xengnttab_set_max_grants(void *h, uint32_t count) { return 0; }

void *xenevtchn_open(void *logger, unsigned flags)
{
	if (evfd < 0)
		evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return evfd < 0 ? NULL : &dummy;
}
void *xenevtchn_fdopen(void *logger, int fd, unsigned flags) { return xenevtchn_open(logger, flags); }
int xenevtchn_fd(void *h) { return evfd; }
int xenevtchn_bind_virq(void *h, unsigned virq) { return 1; }
int xenevtchn_bind_interdomain(void *h, uint32_t domid, uint32_t port) { static int next = 10; return next++; }
int xenevtchn_notify(void *h, uint32_t port) { return 0; }
int xenevtchn_pending(void *h) { return -1; }
int xenevtchn_unmask(void *h, uint32_t port) { return 0; }
int xenevtchn_unbind(void *h, uint32_t port) { return 0; }

/* A descriptor standing in for one of the /proc/xen files, or -2. */
static int fake(const char *path)
{
	int fd;

	if (!strcmp(path, "/proc/xen/xsd_port")) {
		fd = memfd_create("xsd_port", MFD_CLOEXEC);
		if (fd >= 0 && (write(fd, "1", 1) != 1 || lseek(fd, 0, SEEK_SET) != 0))
			return -1;
		return fd;
	}
	if (!strcmp(path, "/proc/xen/xsd_kva")) {
		fd = memfd_create("xsd_kva", MFD_CLOEXEC);
		if (fd >= 0 && ftruncate(fd, 4096) != 0)
			return -1;
		return fd;
	}
	return -2;
}

#define WRAP_OPEN(name)							\
int name(const char *path, int flags, ...)				\
{									\
	static int (*real)(const char *, int, ...);			\
	va_list ap;							\
	int mode, fd = fake(path);					\
									\
	if (fd != -2)							\
		return fd;						\
	va_start(ap, flags);						\
	mode = va_arg(ap, int);						\
	va_end(ap);							\
	if (!real)							\
		real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #name); \
	return real(path, flags, mode);					\
}
WRAP_OPEN(open)
WRAP_OPEN(open64)
