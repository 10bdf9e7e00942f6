/*
 * xenemu_privcmd.so: Xen's C tools (xl, xentop, libxenctrl programs, Xen's
 * xenstored) as Domain-0 programs of a xenemu host, unchanged, through
 * LD_PRELOAD (`xenemu run -- CMD`, docs/xenctrl.md).
 *
 * What a Linux Domain-0 gives those programs, this library presents:
 *
 *   /dev/xen/privcmd, /proc/xen/privcmd   hypercalls (IOCTL_PRIVCMD_HYPERCALL) forwarded to
 *                                         the host's hypervisor as Domain-0
 *   /dev/xen/evtchn                       a connection of its own: read() gives pending ports,
 *                                         write() unmasks, ioctls bind and notify
 *   /dev/xen/gntdev                       its ioctls forwarded (set_max_grants)
 *   /dev/xen/hypercall, xenbus, gntalloc  absent (ENOENT): hypercall buffers are the caller's
 *                                         memory, xenstore is XENSTORED_PATH's socket
 *   /proc/xen/{capabilities,xsd_port}     what the hypervisor says they hold
 *   /proc/uptime                          Domain-0's: since the host's boot
 *   /proc/xen/xsd_kva                     a page of memory (Domain-0's xenstore ring: xenemu's
 *                                         Domain-0 talks to its xenstored over the socket)
 *   /sys/bus/xen-backend/devices          the host's <rundir>/xen-backend/devices; each
 *                                         .../statistics/<name> is that line of the device's
 *                                         statistics file
 *   /etc/xen/xl.conf, /etc/xen/scripts, /var/lib/xen, /var/log/xen, /var/run/xen, /run/xen,
 *   /var/lock/xl                          <rundir>/dom0/<the same path> (open, stat, mkdir,
 *                                         rename, unlink, opendir, glob, connect, exec, ...)
 *   /var/run/xen/qmp-libxl-<domid>        <rundir>/qmp-libxl-<domid>, where an HVM guest's
 *                                         qemu-dm listens
 *
 * The library knows no hypercall layout. A hypercall goes to the hypervisor
 * as its number and five arguments, with the bytes the hypervisor's hints
 * name (hints arrive with HELLO_OK); the hypervisor asks for any other memory
 * it needs (READ) and sends what it writes (WRITE), then the result (RET).
 * The protocol is described in shared/wire/privcmd.ts, the other side is
 * processes/hypervisor/privcmd_sock.ts.
 *
 * The socket is <rundir>/privcmd.sock, <rundir> from XENEMU_HOST_DIR;
 * without it the library does nothing. One connection per process for
 * hypercalls (made at first use, close-on-exec, made again in a forked
 * child: libxl forks), one per open evtchn file. No threads, no ZeroMQ.
 */
/*
 * Both names of each call (open and open64, stat and stat64, ...) are
 * interposed, so neither may be an alias of the other here (node-gyp
 * compiles with _FILE_OFFSET_BITS=64).
 */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

/* shared/wire/privcmd.ts */
#define PC_PROTO_VERSION 1
#define PC_HELLO 1
#define PC_HYPERCALL 2
#define PC_IOCTL 3
#define PC_DATA 4
#define PC_FILE 5
#define PC_HELLO_OK 101
#define PC_READ 102
#define PC_WRITE 103
#define PC_RET 104
#define PC_FILE_DATA 105
#define PC_MESSAGE 107
#define PC_KIND_MAIN 1
#define PC_KIND_EVTCHN 2
#define PC_DEV_EVTCHN 2
#define PC_DEV_GNTDEV 3
#define FRAME_MAX (4u << 20)

/* xen/sys/privcmd.h: the driver's own argument, not a hypercall's. */
#define IOCTL_PRIVCMD_HYPERCALL 0x305000UL
struct privcmd_hypercall { uint64_t op; uint64_t arg[5]; };

#define MAX_HINTS 32
#define MAX_VFD 16384

enum vkind { V_NONE, V_PRIVCMD, V_EVTCHN, V_GNTDEV };

struct vfd { uint8_t kind; uint32_t id; dev_t dev; ino_t ino; };
struct hint { uint32_t op, arg, len; };

static int active;
static char rundir[PATH_MAX];
static char sockpath[PATH_MAX];

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int conn = -1;
/* getpid() is a system call each time: this process's, kept (a forked child sets its own). */
static pid_t self;
static struct hint hints[MAX_HINTS];
static unsigned nhints;
static struct vfd vfds[MAX_VFD];
/*
 * What arrived on the process's connection past the frames taken so far:
 * the hypervisor sends a call's WRITEs and its RET together, and one recv
 * takes them all.
 */
static char rbuf[64 << 10];
static size_t rhead, rtail;


/* ---- the real functions ------------------------------------------------- */

#define REAL(name, ret, ...) \
	static ret (*real_##name)(__VA_ARGS__); \
	static void resolve_##name(void) { if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name); }

REAL(open, int, const char *, int, ...)
REAL(open64, int, const char *, int, ...)
REAL(openat, int, int, const char *, int, ...)
REAL(openat64, int, int, const char *, int, ...)
REAL(__open_2, int, const char *, int)
REAL(__open64_2, int, const char *, int)
REAL(__openat_2, int, int, const char *, int)
REAL(__openat64_2, int, int, const char *, int)
REAL(fopen, FILE *, const char *, const char *)
REAL(fopen64, FILE *, const char *, const char *)
REAL(opendir, DIR *, const char *)
REAL(ioctl, int, int, unsigned long, ...)
REAL(close, int, int)
REAL(stat, int, const char *, struct stat *)
REAL(lstat, int, const char *, struct stat *)
REAL(stat64, int, const char *, struct stat64 *)
REAL(lstat64, int, const char *, struct stat64 *)
REAL(fstatat, int, int, const char *, struct stat *, int)
REAL(fstatat64, int, int, const char *, struct stat64 *, int)
REAL(access, int, const char *, int)
REAL(faccessat, int, int, const char *, int, int)
REAL(mkdir, int, const char *, mode_t)
REAL(unlink, int, const char *)
REAL(rmdir, int, const char *)
REAL(rename, int, const char *, const char *)
REAL(chmod, int, const char *, mode_t)
REAL(readlink, ssize_t, const char *, char *, size_t)
REAL(connect, int, int, const struct sockaddr *, socklen_t)
REAL(execve, int, const char *, char *const[], char *const[])
REAL(execv, int, const char *, char *const[])
REAL(execvp, int, const char *, char *const[])
REAL(glob, int, const char *, int, int (*)(const char *, int), glob_t *)
REAL(glob64, int, const char *, int, int (*)(const char *, int), glob64_t *)

static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		(void)!write(2, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void after_fork_child(void)
{
	/* The parent's connection is the parent's: this process makes its own. */
	if (conn >= 0) {
		resolve_close();
		real_close(conn);
		conn = -1;
	}
	rhead = rtail = 0;
	self = getpid();
	pthread_mutex_init(&lock, NULL);
}

__attribute__((constructor)) static void init(void)
{
	const char *dir = getenv("XENEMU_HOST_DIR");

	if (!dir || !*dir || strlen(dir) + 32 >= sizeof(rundir))
		return;
	snprintf(rundir, sizeof(rundir), "%s", dir);
	snprintf(sockpath, sizeof(sockpath), "%s/privcmd.sock", dir);
	active = 1;
	self = getpid();
	pthread_atfork(NULL, NULL, after_fork_child);
}

/* ---- the socket ----------------------------------------------------------- */

static int send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);
		if (n == 0) {
			errno = ECONNRESET;
			return -1;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One frame: its type and body (malloc'd, *len bytes), or -1. `buffered`: the process's connection. */
static int recv_frame_from(int fd, int buffered, uint32_t *type, char **body, uint32_t *len)
{
	uint32_t hdr[2];

	if (!buffered) {
		if (recv_all(fd, hdr, sizeof(hdr)))
			return -1;
	} else {
		while (rtail - rhead < sizeof(hdr)) {
			ssize_t n;

			if (rhead == rtail)
				rhead = rtail = 0;
			n = recv(fd, rbuf + rtail, sizeof(rbuf) - rtail, 0);
			if (n == 0)
				errno = ECONNRESET;
			if (n <= 0) {
				if (n < 0 && errno == EINTR)
					continue;
				return -1;
			}
			rtail += (size_t)n;
		}
		memcpy(hdr, rbuf + rhead, sizeof(hdr));
	}
	if (hdr[0] < sizeof(hdr) || hdr[0] > FRAME_MAX) {
		errno = EPROTO;
		return -1;
	}
	*type = hdr[1];
	*len = hdr[0] - sizeof(hdr);
	*body = malloc(*len ? *len : 1);
	if (!*body)
		return -1;
	if (buffered) {
		size_t have = rtail - rhead - sizeof(hdr);
		size_t take = have < *len ? have : *len;

		memcpy(*body, rbuf + rhead + sizeof(hdr), take);
		rhead += sizeof(hdr) + take;
		if (rhead == rtail)
			rhead = rtail = 0;
		if (take < *len && recv_all(fd, *body + take, *len - take)) {
			free(*body);
			return -1;
		}
		return 0;
	}
	if (recv_all(fd, *body, *len)) {
		free(*body);
		return -1;
	}
	return 0;
}

static int recv_frame(int fd, uint32_t *type, char **body, uint32_t *len)
{
	return recv_frame_from(fd, fd == conn, type, body, len);
}

/* A connected socket that said HELLO as `kind`; its id in *id. */
static int hello(int kind, int cloexec, uint32_t *id)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint32_t msg[5] = { sizeof(msg), PC_HELLO, PC_PROTO_VERSION, (uint32_t)kind, (uint32_t)self };
	uint32_t type, len;
	char *body;
	int fd, e;

	fd = socket(AF_UNIX, SOCK_STREAM | (cloexec ? SOCK_CLOEXEC : 0), 0);
	if (fd < 0)
		return -1;
	if (strlen(sockpath) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	memcpy(sa.sun_path, sockpath, strlen(sockpath) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) || send_all(fd, msg, sizeof(msg)) ||
	    recv_frame(fd, &type, &body, &len))
		goto fail;
	if (type != PC_HELLO_OK || len < 8) {
		free(body);
		errno = EPROTO;
		goto fail;
	}
	memcpy(id, body, 4);
	if (kind == PC_KIND_MAIN) {
		uint32_t n;

		memcpy(&n, body + 4, 4);
		nhints = 0;
		for (uint32_t i = 0; i < n && i < MAX_HINTS && 8 + 12 * (i + 1) <= len; i++) {
			memcpy(&hints[i], body + 8 + 12 * i, 12);
			nhints++;
		}
	}
	free(body);
	return fd;
fail:
	e = errno;
	say("xenemu: cannot reach the hypervisor at %s: %s\n", sockpath, strerror(e));
	resolve_close();
	real_close(fd);
	errno = e;
	return -1;
}

/* The process's connection (the lock held). */
static int main_conn(void)
{
	uint32_t id;

	if (conn < 0)
		conn = hello(PC_KIND_MAIN, 1, &id);
	return conn;
}

/* Copies of the caller's own memory that fail (EFAULT) instead of crashing. */
static ssize_t self_read(void *dst, uint64_t addr, size_t len)
{
	struct iovec l = { dst, len }, r = { (void *)(uintptr_t)addr, len };

	return process_vm_readv(self, &l, 1, &r, 1, 0);
}

static ssize_t self_write(uint64_t addr, const void *src, size_t len)
{
	struct iovec l = { (void *)src, len }, r = { (void *)(uintptr_t)addr, len };

	return process_vm_writev(self, &l, 1, &r, 1, 0);
}

/* A growing frame under construction. */
struct buf { char *p; size_t len, cap; };

static int put(struct buf *b, const void *src, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 512;
		char *p;

		while (cap < b->len + len)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, src, len);
	b->len += len;
	return 0;
}

/* Room for `len` more bytes at the end of `b`. */
static int reserve(struct buf *b, size_t len)
{
	char *p;

	if (b->len + len <= b->cap)
		return 0;
	p = realloc(b->p, b->len + len);
	if (!p)
		return -1;
	b->p = p;
	b->cap = b->len + len;
	return 0;
}

/* A block of the caller's memory: u64 addr, u32 len, bytes (as much as is readable; none: no block). */
static int put_block(struct buf *b, uint32_t *count, uint64_t addr, uint32_t len)
{
	uint32_t got;
	ssize_t n;

	if (!addr || !len)
		return 0;
	if (reserve(b, 12 + (size_t)len))
		return -1;
	n = self_read(b->p + b->len + 12, addr, len);
	if (n <= 0)
		return 0;
	got = (uint32_t)n;
	memcpy(b->p + b->len, &addr, 8);
	memcpy(b->p + b->len + 8, &got, 4);
	b->len += 12 + got;
	(*count)++;
	return 0;
}

/*
 * Sends the frame in `b` (its header filled in here) and serves the
 * hypervisor's READs and WRITEs until its RET. The lock is held.
 */
static long exchange(struct buf *b)
{
	uint32_t *hdr = (uint32_t *)b->p;
	int efault = 0;

	hdr[0] = (uint32_t)b->len;
	if (send_all(conn, b->p, b->len))
		goto broken;
	for (;;) {
		uint32_t type, len;
		char *body;

		if (recv_frame(conn, &type, &body, &len))
			goto broken;
		if (type == PC_READ && len >= 12) {
			uint64_t addr;
			uint32_t want, status = 0, pad = 0;
			uint32_t out[2];
			char *data;
			ssize_t n;

			memcpy(&addr, body, 8);
			memcpy(&want, body + 8, 4);
			data = want <= FRAME_MAX - 16 ? malloc(want ? want : 1) : NULL;
			n = data ? self_read(data, addr, want) : -1;
			if (n != (ssize_t)want)
				status = EFAULT;
			out[0] = 16 + (status ? 0 : want);
			out[1] = PC_DATA;
			if (send_all(conn, out, 8) || send_all(conn, &status, 4) || send_all(conn, &pad, 4) ||
			    (!status && send_all(conn, data, want))) {
				free(data);
				free(body);
				goto broken;
			}
			free(data);
		} else if (type == PC_WRITE && len >= 8) {
			uint64_t addr;

			memcpy(&addr, body, 8);
			if (self_write(addr, body + 8, len - 8) != (ssize_t)(len - 8))
				efault = 1;
		} else if (type == PC_MESSAGE) {
			say("%.*s\n", (int)len, body);
		} else if (type == PC_RET && len >= 8) {
			int64_t ret;

			memcpy(&ret, body, 8);
			free(body);
			return efault && ret >= 0 ? -EFAULT : (long)ret;
		}
		free(body);
	}
broken:
	say("xenemu: lost the hypervisor at %s: %s\n", sockpath, strerror(errno));
	resolve_close();
	real_close(conn);
	conn = -1;
	rhead = rtail = 0;
	return -EIO;
}

static long hypercall(struct privcmd_hypercall *h)
{
	struct buf b = { 0 };
	uint32_t hdr[2] = { 0, PC_HYPERCALL }, count = 0;
	size_t count_at;
	long ret;

	pthread_mutex_lock(&lock);
	if (main_conn() < 0) {
		pthread_mutex_unlock(&lock);
		return -EIO;
	}
	if (put(&b, hdr, 8) || put(&b, &h->op, 8) || put(&b, h->arg, 40))
		goto nomem;
	count_at = b.len;
	if (put(&b, &count, 4))
		goto nomem;
	for (unsigned i = 0; i < nhints; i++)
		if (hints[i].op == h->op && hints[i].arg < 5 && put_block(&b, &count, h->arg[hints[i].arg], hints[i].len))
			goto nomem;
	memcpy(b.p + count_at, &count, 4);
	ret = exchange(&b);
	free(b.p);
	pthread_mutex_unlock(&lock);
	return ret;
nomem:
	free(b.p);
	pthread_mutex_unlock(&lock);
	return -ENOMEM;
}

/* An ioctl of an evtchn or gntdev file, with the _IOC_SIZE bytes at its argument. */
static long dev_ioctl(uint32_t dev, uint32_t id, unsigned long cmd, void *arg)
{
	struct buf b = { 0 };
	uint32_t head[6] = { 0, PC_IOCTL, dev, id, (uint32_t)cmd, 0 }, count = 0;
	uint64_t addr = (uintptr_t)arg;
	size_t count_at;
	long ret;

	pthread_mutex_lock(&lock);
	if (main_conn() < 0) {
		pthread_mutex_unlock(&lock);
		return -EIO;
	}
	if (put(&b, head, sizeof(head)) || put(&b, &addr, 8))
		goto nomem;
	count_at = b.len;
	if (put(&b, &count, 4) || put_block(&b, &count, addr, (cmd >> 16) & 0x3fff))
		goto nomem;
	memcpy(b.p + count_at, &count, 4);
	ret = exchange(&b);
	free(b.p);
	pthread_mutex_unlock(&lock);
	return ret;
nomem:
	free(b.p);
	pthread_mutex_unlock(&lock);
	return -ENOMEM;
}

/* What a virtual file holds, from the hypervisor: a memfd positioned at 0, or -1. */
static int file_from_host(const char *path, int cloexec)
{
	uint32_t hdr[2] = { 8 + (uint32_t)strlen(path), PC_FILE }, type, len;
	char *body = NULL;
	int32_t err;
	int fd = -1;

	pthread_mutex_lock(&lock);
	if (main_conn() < 0 || send_all(conn, hdr, 8) || send_all(conn, path, strlen(path)) ||
	    recv_frame(conn, &type, &body, &len) || type != PC_FILE_DATA || len < 4) {
		free(body);
		pthread_mutex_unlock(&lock);
		errno = EIO;
		return -1;
	}
	pthread_mutex_unlock(&lock);
	memcpy(&err, body, 4);
	if (err) {
		free(body);
		errno = err;
		return -1;
	}
	fd = memfd_create("xenemu-file", cloexec ? MFD_CLOEXEC : 0);
	if (fd >= 0 && (write(fd, body + 4, len - 4) != (ssize_t)(len - 4) || lseek(fd, 0, SEEK_SET) != 0)) {
		resolve_close();
		real_close(fd);
		fd = -1;
		errno = EIO;
	}
	free(body);
	return fd;
}

/* ---- descriptors that stand for a device ---------------------------------- */

static void remember(int fd, enum vkind kind, uint32_t id)
{
	struct stat st;

	if (fd < 0 || fd >= MAX_VFD || fstat(fd, &st))
		return;
	vfds[fd] = (struct vfd){ (uint8_t)kind, id, st.st_dev, st.st_ino };
}

/* The device `fd` stands for, if it is still the descriptor we made. */
static struct vfd *lookup(int fd)
{
	struct stat st;
	struct vfd *v;

	if (fd < 0 || fd >= MAX_VFD || vfds[fd].kind == V_NONE)
		return NULL;
	v = &vfds[fd];
	if (fstat(fd, &st) || st.st_dev != v->dev || st.st_ino != v->ino) {
		v->kind = V_NONE;
		return NULL;
	}
	return v;
}

static int open_device(enum vkind kind, int flags)
{
	int cloexec = !!(flags & O_CLOEXEC), fd;
	uint32_t id = 0;

	if (kind == V_EVTCHN) {
		fd = hello(PC_KIND_EVTCHN, cloexec, &id);
		if (fd >= 0 && (flags & O_NONBLOCK))
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	} else {
		if (kind == V_PRIVCMD) {
			pthread_mutex_lock(&lock);
			fd = main_conn();
			pthread_mutex_unlock(&lock);
			if (fd < 0)
				return -1;
		}
		fd = memfd_create(kind == V_PRIVCMD ? "xenemu-privcmd" : "xenemu-gntdev", cloexec ? MFD_CLOEXEC : 0);
	}
	if (fd >= 0)
		remember(fd, kind, id);
	return fd;
}

/* /sys/bus/xen-backend/devices/<dev>/statistics/<name>: that line of the device's statistics file. */
static int open_statistic(const char *dev, const char *name, int cloexec)
{
	char path[PATH_MAX], line[256];
	size_t nlen = strlen(name);
	FILE *f;
	int fd = -1;

	int n = snprintf(path, sizeof(path), "%s/xen-backend/devices/%.*s/statistics", rundir,
			 (int)(strchr(dev, '/') - dev), dev);

	if (n < 0 || n >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	resolve_fopen();
	f = real_fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, nlen) || line[nlen] != ' ')
			continue;
		fd = memfd_create("xenemu-sysfs", cloexec ? MFD_CLOEXEC : 0);
		if (fd >= 0) {
			const char *v = line + nlen + 1;
			if (write(fd, v, strlen(v)) < 0 || lseek(fd, 0, SEEK_SET) != 0) {
				resolve_close();
				real_close(fd);
				fd = -1;
			}
		}
		break;
	}
	fclose(f);
	if (fd < 0)
		errno = ENOENT;
	return fd;
}

/* ---- paths ------------------------------------------------------------------ */

static const struct { const char *from, *to; } redirects[] = {
	{ "/etc/xen/xl.conf", "/dom0/etc/xen/xl.conf" },
	{ "/etc/xen/scripts", "/dom0/etc/xen/scripts" },
	{ "/var/lib/xen", "/dom0/var/lib/xen" },
	{ "/var/log/xen", "/dom0/var/log/xen" },
	{ "/var/run/xen", "/dom0/var/run/xen" },
	{ "/run/xen", "/dom0/var/run/xen" },
	{ "/var/lock/xl", "/dom0/var/lock/xl" },
	{ "/sys/bus/xen-backend", "/xen-backend" },
};

/* `path` under `prefix` (equal, or followed by '/'): what follows, else NULL. */
static const char *under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncmp(path, prefix, n) || (path[n] && path[n] != '/'))
		return NULL;
	return path + n;
}

/* The host's file for a redirected path (in `out`), or `path` itself. */
static const char *redirect(const char *path, char *out, size_t size)
{
	static const char *qmp[] = { "/var/run/xen/qmp-libxl-", "/run/xen/qmp-libxl-" };

	if (!active || !path || path[0] != '/')
		return path;
	for (size_t i = 0; i < 2; i++)
		if (!strncmp(path, qmp[i], strlen(qmp[i])) &&
		    snprintf(out, size, "%s/qmp-libxl-%s", rundir, path + strlen(qmp[i])) < (int)size)
			return out;
	for (size_t i = 0; i < sizeof(redirects) / sizeof(redirects[0]); i++) {
		const char *rest = under(path, redirects[i].from);
		if (rest && snprintf(out, size, "%s%s%s", rundir, redirects[i].to, rest) < (int)size)
			return out;
	}
	return path;
}

/*
 * A device or virtual file for `path`: its descriptor, or -1 with errno;
 * -2 when `path` is none of them.
 */
static int virtual_open(const char *path, int flags)
{
	const char *rest;
	int cloexec = !!(flags & O_CLOEXEC);

	if (!active || !path)
		return -2;
	if (!strcmp(path, "/dev/xen/privcmd") || !strcmp(path, "/proc/xen/privcmd"))
		return open_device(V_PRIVCMD, flags);
	if (!strcmp(path, "/dev/xen/evtchn"))
		return open_device(V_EVTCHN, flags);
	if (!strcmp(path, "/dev/xen/gntdev"))
		return open_device(V_GNTDEV, flags);
	if (!strcmp(path, "/dev/xen/hypercall") || !strcmp(path, "/dev/xen/xenbus") ||
	    !strcmp(path, "/proc/xen/xenbus") || !strcmp(path, "/dev/xen/gntalloc")) {
		errno = ENOENT;
		return -1;
	}
	if (!strcmp(path, "/proc/xen/capabilities") || !strcmp(path, "/proc/xen/xsd_port") ||
	    !strcmp(path, "/proc/uptime"))
		return file_from_host(path, cloexec);
	if (!strcmp(path, "/proc/xen/xsd_kva")) {
		int fd = memfd_create("xenemu-xsd_kva", cloexec ? MFD_CLOEXEC : 0);
		if (fd >= 0 && ftruncate(fd, getpagesize())) {
			resolve_close();
			real_close(fd);
			return -1;
		}
		return fd;
	}
	rest = under(path, "/sys/bus/xen-backend/devices");
	if (rest && *rest == '/') {
		const char *stat = strstr(rest + 1, "/statistics/");
		if (stat && !strchr(stat + 12, '/'))
			return open_statistic(rest + 1, stat + 12, cloexec);
	}
	return -2;
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

#define OPEN_WRAPPER(name)							\
int name(const char *path, int flags, ...)					\
{									\
	char buf[PATH_MAX];						\
	va_list ap;							\
	mode_t mode;							\
	int fd = virtual_open(path, flags);				\
									\
	if (fd != -2)							\
		return fd;						\
	va_start(ap, flags);						\
	mode = mode_arg(flags, ap);					\
	va_end(ap);							\
	resolve_##name();						\
	return real_##name(redirect(path, buf, sizeof(buf)), flags, mode); \
}
OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)

#define OPENAT_WRAPPER(name)							\
int name(int dirfd, const char *path, int flags, ...)			\
{									\
	char buf[PATH_MAX];						\
	va_list ap;							\
	mode_t mode;							\
	int fd = path[0] == '/' ? virtual_open(path, flags) : -2; \
									\
	if (fd != -2)							\
		return fd;						\
	va_start(ap, flags);						\
	mode = mode_arg(flags, ap);					\
	va_end(ap);							\
	resolve_##name();						\
	return real_##name(dirfd, redirect(path, buf, sizeof(buf)), flags, mode); \
}
OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)

/* The fortified opens (_FORTIFY_SOURCE): libxenevtchn opens through __open_2. */
#define OPEN2_WRAPPER(name)							\
int name(const char *path, int flags)					\
{									\
	char buf[PATH_MAX];						\
	int fd = virtual_open(path, flags);				\
									\
	if (fd != -2)							\
		return fd;						\
	resolve_##name();						\
	return real_##name(redirect(path, buf, sizeof(buf)), flags);	\
}
OPEN2_WRAPPER(__open_2)
OPEN2_WRAPPER(__open64_2)

#define OPENAT2_WRAPPER(name)							\
int name(int dirfd, const char *path, int flags)			\
{									\
	char buf[PATH_MAX];						\
	int fd = path[0] == '/' ? virtual_open(path, flags) : -2; \
									\
	if (fd != -2)							\
		return fd;						\
	resolve_##name();						\
	return real_##name(dirfd, redirect(path, buf, sizeof(buf)), flags); \
}
OPENAT2_WRAPPER(__openat_2)
OPENAT2_WRAPPER(__openat64_2)

/* stdio opens through glibc's own open, which LD_PRELOAD does not reach. */
static FILE *virtual_fopen(const char *path, const char *mode)
{
	int flags = strchr(mode, 'e') ? O_CLOEXEC : 0;
	int fd = virtual_open(path, flags | (strchr(mode, '+') || strchr(mode, 'w') ? O_RDWR : O_RDONLY));
	FILE *f;

	if (fd == -2)
		return (FILE *)-1;
	if (fd < 0)
		return NULL;
	f = fdopen(fd, mode);
	if (!f) {
		resolve_close();
		real_close(fd);
	}
	return f;
}

#define FOPEN_WRAPPER(name)							\
FILE *name(const char *path, const char *mode)				\
{									\
	char buf[PATH_MAX];						\
	FILE *f = virtual_fopen(path, mode);				\
									\
	if (f != (FILE *)-1)						\
		return f;						\
	resolve_##name();						\
	return real_##name(redirect(path, buf, sizeof(buf)), mode);	\
}
FOPEN_WRAPPER(fopen)
FOPEN_WRAPPER(fopen64)

DIR *opendir(const char *path)
{
	char buf[PATH_MAX];

	resolve_opendir();
	return real_opendir(redirect(path, buf, sizeof(buf)));
}

/* Calls that take one path and pass everything else through. */
#define PATH_WRAPPER(ret, name, T2, a2)					\
ret name(const char *path, T2 a2)					\
{									\
	char buf[PATH_MAX];						\
	resolve_##name();						\
	return real_##name(redirect(path, buf, sizeof(buf)), a2);	\
}
PATH_WRAPPER(int, stat, struct stat *, st)
PATH_WRAPPER(int, lstat, struct stat *, st)
PATH_WRAPPER(int, stat64, struct stat64 *, st)
PATH_WRAPPER(int, lstat64, struct stat64 *, st)
PATH_WRAPPER(int, access, int, how)
PATH_WRAPPER(int, mkdir, mode_t, mode)
PATH_WRAPPER(int, chmod, mode_t, mode)

int unlink(const char *path)
{
	char buf[PATH_MAX];

	resolve_unlink();
	return real_unlink(redirect(path, buf, sizeof(buf)));
}

int rmdir(const char *path)
{
	char buf[PATH_MAX];

	resolve_rmdir();
	return real_rmdir(redirect(path, buf, sizeof(buf)));
}

int rename(const char *from, const char *to)
{
	char b1[PATH_MAX], b2[PATH_MAX];

	resolve_rename();
	return real_rename(redirect(from, b1, sizeof(b1)), redirect(to, b2, sizeof(b2)));
}

ssize_t readlink(const char *path, char *out, size_t size)
{
	char buf[PATH_MAX];

	resolve_readlink();
	return real_readlink(redirect(path, buf, sizeof(buf)), out, size);
}

int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	char buf[PATH_MAX];

	resolve_fstatat();
	return real_fstatat(dirfd, redirect(path, buf, sizeof(buf)), st, flags);
}

int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	char buf[PATH_MAX];

	resolve_fstatat64();
	return real_fstatat64(dirfd, redirect(path, buf, sizeof(buf)), st, flags);
}

int faccessat(int dirfd, const char *path, int how, int flags)
{
	char buf[PATH_MAX];

	resolve_faccessat();
	return real_faccessat(dirfd, redirect(path, buf, sizeof(buf)), how, flags);
}

/* A Unix socket's path is a path too: libxl reaches qemu's QMP socket by it. */
int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)addr;
	struct sockaddr_un moved;
	char buf[PATH_MAX], path[sizeof(un->sun_path) + 1];
	const char *to;

	resolve_connect();
	if (!active || !addr || addr->sa_family != AF_UNIX || len <= offsetof(struct sockaddr_un, sun_path) ||
	    !un->sun_path[0])
		return real_connect(fd, addr, len);
	memcpy(path, un->sun_path, len - offsetof(struct sockaddr_un, sun_path));
	path[len - offsetof(struct sockaddr_un, sun_path)] = 0;
	to = redirect(path, buf, sizeof(buf));
	if (to == path || strlen(to) >= sizeof(moved.sun_path))
		return real_connect(fd, addr, len);
	moved.sun_family = AF_UNIX;
	memcpy(moved.sun_path, to, strlen(to) + 1);
	return real_connect(fd, (struct sockaddr *)&moved, sizeof(moved));
}

/* libxl runs its hotplug scripts (/etc/xen/scripts/vif-bridge, block) by path. */
int execve(const char *path, char *const argv[], char *const envp[])
{
	char buf[PATH_MAX];

	resolve_execve();
	return real_execve(redirect(path, buf, sizeof(buf)), argv, envp);
}

int execv(const char *path, char *const argv[])
{
	char buf[PATH_MAX];

	resolve_execv();
	return real_execv(redirect(path, buf, sizeof(buf)), argv);
}

int execvp(const char *file, char *const argv[])
{
	char buf[PATH_MAX];

	resolve_execvp();
	return real_execvp(redirect(file, buf, sizeof(buf)), argv);
}

/* glob reads directories with glibc's own opendir: the pattern itself is moved (libxl's userdata). */
int glob(const char *pattern, int flags, int (*err)(const char *, int), glob_t *g)
{
	char buf[PATH_MAX];

	resolve_glob();
	return real_glob(redirect(pattern, buf, sizeof(buf)), flags, err, g);
}

int glob64(const char *pattern, int flags, int (*err)(const char *, int), glob64_t *g)
{
	char buf[PATH_MAX];

	resolve_glob64();
	return real_glob64(redirect(pattern, buf, sizeof(buf)), flags, err, g);
}

/* ---- ioctl and close ---------------------------------------------------------- */

int ioctl(int fd, unsigned long cmd, ...)
{
	struct vfd *v = active ? lookup(fd) : NULL;
	va_list ap;
	void *arg;
	long ret;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!v) {
		resolve_ioctl();
		return real_ioctl(fd, cmd, arg);
	}
	switch (v->kind) {
	case V_PRIVCMD:
		if (cmd == IOCTL_PRIVCMD_HYPERCALL) {
			struct privcmd_hypercall h;

			if (self_read(&h, (uintptr_t)arg, sizeof(h)) != sizeof(h)) {
				errno = EFAULT;
				return -1;
			}
			ret = hypercall(&h);
		} else {
			/*
			 * Foreign mappings, dm_op and restrict are not offered: libxendevicemodel
			 * then makes dm_op a hypercall, and IOCTL_PRIVCMD_UNIMPLEMENTED fails as
			 * libxenforeignmemory expects.
			 */
			ret = -ENOTTY;
		}
		break;
	case V_EVTCHN:
		ret = dev_ioctl(PC_DEV_EVTCHN, v->id, cmd, arg);
		break;
	default:
		ret = dev_ioctl(PC_DEV_GNTDEV, v->id, cmd, arg);
		break;
	}
	if (ret < 0) {
		errno = (int)-ret;
		return -1;
	}
	return (int)ret;
}

int close(int fd)
{
	if (fd >= 0 && fd < MAX_VFD)
		vfds[fd].kind = V_NONE;
	/* A program that closes every descriptor (before an exec) closes ours too: make another next time. */
	if (fd >= 0 && fd == conn) {
		conn = -1;
		rhead = rtail = 0;
	}
	resolve_close();
	return real_close(fd);
}
